"""Training data: annotated sequences from disk (:mod:`.sources`), template/search pairs drawn
from them (:mod:`.pairs`) and the augmented crops the network learns from (:mod:`.augment`)."""
