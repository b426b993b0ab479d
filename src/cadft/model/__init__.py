"""The model: loading one (the embedded SmolLM2, a hub id or a folder: loading.py; tiny random
ones for tests: tiny.py), the one no-grad scoring pass of label log-probs through the fused LM
head (scoring.py, vocab_tiles.py), generation (generation.py), and what sharding changes
(sharding.py)."""
