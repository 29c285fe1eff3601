"""Training and fine-tuning (a tool: it uses the core, the core never imports it).

``python -m tracker.train`` is the command; :func:`tracker.train.engine.train` the function.
"""
