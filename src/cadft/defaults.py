"""The CADFT estimator's defaults, in one place: `CADFTConfig` and the `cadft score` and
`cadft rewrite` commands read them (this module imports nothing, so the commands' --help stays
fast).

The default is the paper's estimator (METHOD.md, docs/method.md): u = length-normalised NLL,
z-scored over the optimizer step's global batch, w = exp(-beta * max(0, z)), on DFT's token
loss. The earlier estimator's values apply only when it is chosen (`cadft_normalization`
"ema" or "batch"); they are what the project's ablation chose for it on its testbed."""

NORMALIZATION = "zscore"  # the paper's: z-score of u over the step's global batch
NORMALIZATIONS = ("zscore", "ema", "batch")
BETA = 1.0  # the paper's beta
TOKEN_POWER = 1.0  # alpha in -sg(p)**alpha * log p: DFT's token loss
EPS = 1e-6  # the paper's eps in z = (u - mu) / (sigma + eps)
SCOPE = "step"  # z over the whole optimizer step (all micro-batches and processes)
SCOPES = ("step", "micro_batch")

# The earlier estimator (ema / batch): w = clip(c**beta / m, W_MIN, W_MAX)
W_MIN = 0.1  # positive: no demonstration is silently dropped
W_MAX = 3.0  # the weight ceiling
EMA_DECAY = 0.9
CALIBRATION_SAMPLES = 64
EARLIER_TOKEN_POWER = 0.5  # the earlier default's token power (set explicitly: cadft_token_power=0.5)

# Which fields mean something for which estimator
ZSCORE_FIELDS = ("cadft_eps", "cadft_scope")
RUNNING_FIELDS = ("cadft_w_min", "cadft_w_max", "cadft_ema_decay", "cadft_calibration_samples")
