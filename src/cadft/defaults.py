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


class ForeignOptions(ValueError):
    """Options given that the chosen estimator does not read (`resolve_estimator_options`)."""

    def __init__(self, message: str, given: list[str]):
        super().__init__(message)
        self.given = given


def resolve_estimator_options(options: dict, name=lambda field: field) -> dict:
    """Check the estimator's options and fill in the defaults of the chosen one: the one
    check `CADFTConfig` and `cadft score` share. `options` maps CADFTConfig field names
    (`cadft_normalization`, `cadft_beta`, ...; `cadft_normalizer`, a fixed m, for `cadft
    score`) to values, None where not given; `name(field)` is how the caller spells a field
    in its messages. Returns the options, defaults filled in; raises ValueError (an option
    of the other estimator: `ForeignOptions`)."""
    options = dict(options)
    normalization = options["cadft_normalization"]
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"{name('cadft_normalization')}={normalization!r} is not valid; choose one of "
                         f"{', '.join(NORMALIZATIONS)}")
    if options["cadft_beta"] < 0:
        raise ValueError(f"{name('cadft_beta')} must be >= 0, got {options['cadft_beta']}")
    power = options.get("cadft_token_power")
    if power is not None and not 0 <= power <= 1:
        raise ValueError(f"{name('cadft_token_power')} must be in [0, 1], got {power}")
    zscore = normalization == "zscore"
    read, foreign = (ZSCORE_FIELDS, RUNNING_FIELDS + ("cadft_normalizer",))
    if not zscore:
        read, foreign = foreign, read
    given = [field for field in foreign if options.get(field) is not None]
    if given:
        names = [name(field) for field in given]
        reads = lambda fields: ", ".join(name(f) for f in ("cadft_beta", "cadft_token_power", *fields)  # noqa: E731
                                         if f in options)
        raise ForeignOptions(
            f"{', '.join(names)} {'has' if len(given) == 1 else 'have'} no meaning for cadft_normalization="
            f"{normalization!r}. The paper's estimator ('zscore', the default) reads "
            f"{reads(ZSCORE_FIELDS)}; the earlier one ('ema' or 'batch') reads {reads(RUNNING_FIELDS)}.",
            names,
        )
    defaults = ({"cadft_eps": EPS, "cadft_scope": SCOPE} if zscore else
                {"cadft_w_min": W_MIN, "cadft_w_max": W_MAX, "cadft_ema_decay": EMA_DECAY,
                 "cadft_calibration_samples": CALIBRATION_SAMPLES})
    for field, default in defaults.items():
        if field in options and options[field] is None:
            options[field] = default
    if zscore:
        if "cadft_eps" in options and not options["cadft_eps"] > 0:
            raise ValueError(f"{name('cadft_eps')} must be > 0, got {options['cadft_eps']}")
        if "cadft_scope" in options and options["cadft_scope"] not in SCOPES:
            raise ValueError(f"{name('cadft_scope')}={options['cadft_scope']!r} is not valid; choose one of "
                             f"{', '.join(SCOPES)}")
        return options
    if options.get("cadft_normalizer") is not None and not options["cadft_normalizer"] > 0:
        raise ValueError(f"{name('cadft_normalizer')} must be > 0, got {options['cadft_normalizer']}")
    w_min, w_max = options.get("cadft_w_min"), options.get("cadft_w_max")
    if w_min is not None and not 0 <= w_min <= w_max:
        raise ValueError(f"need 0 <= {name('cadft_w_min')} <= {name('cadft_w_max')}, got {name('cadft_w_min')}="
                         f"{w_min}, {name('cadft_w_max')}={w_max}")
    decay = options.get("cadft_ema_decay")
    if decay is not None and not 0 <= decay < 1:
        raise ValueError(f"{name('cadft_ema_decay')} must be in [0, 1), got {decay}")
    samples = options.get("cadft_calibration_samples")
    if samples is not None and samples < 1:
        raise ValueError(f"{name('cadft_calibration_samples')} must be >= 1, got {samples}")
    return options
