"""The CADFT estimator's defaults, in one place: `CADFTConfig` and the `cadft score` and
`cadft rewrite` commands read them (this module imports nothing, so the commands' --help stays
fast). They are the variant the ablation's pre-registered decision rule chose on the
controlled testbed: docs/method.md, "Defaults chosen by the ablation"."""

NORMALIZATION = "ema"  # the running mean of c**beta over steps
TOKEN_POWER = 0.5  # alpha in -sg(p)**alpha * log p: between DFT's token loss (1) and the NLL (0)
BETA = 1.0  # the exponent on the compatibility c in the sample weight c**beta / m
W_MIN = 0.1  # positive: no demonstration is silently dropped
W_MAX = 3.0  # the weight ceiling
