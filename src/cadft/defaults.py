"""The CADFT estimator's defaults, in one place: `CADFTConfig` and the `cadft score` and
`cadft rewrite` commands read them (this module imports nothing, so the commands' --help stays
fast).

The default is the paper's estimator (METHOD.md, docs/method.md): u = length-normalised NLL,
z-scored over the optimizer step's global batch, w = exp(-beta * max(0, z)), on DFT's token
loss. The earlier estimator's values apply only when it is chosen (`cadft_estimator`
"ema" or "batch"); they are what the project's ablation chose for it on its testbed."""

NORMALIZATION = "zscore"  # the paper's: z-score of u over the step's global batch
NORMALIZATIONS = ("zscore", "ema", "batch")
NO_WEIGHTS = "none"  # cadft_estimator of a bare token loss: every sample weight 1
SAMPLE_WEIGHTS = (NO_WEIGHTS, *NORMALIZATIONS)  # what CADFTConfig's cadft_estimator takes
# Config fields renamed: the old name still works, with a FutureWarning (`renamed`).
# cadft_normalization chose the estimator (none, zscore, ema, batch), not a normalisation.
RENAMED = {"cadft_normalization": "cadft_estimator"}
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

# The token losses besides SFT, DFT and CADFT's token power (docs/method.md, "Token losses").
# cadft.losses.asft and cadft.losses.eaft hold the same values (tests/test_token_losses.py)
ASFT_KL_COEF = 0.1  # lambda on KL(pi_ref || pi_theta): the ASFT authors' kl_weight, LLaMA-Factory's asft_alpha
EAFT_ALPHA = 1.0  # the exponent of EAFT's entropy gate: LLaMA-Factory's eaft_alpha
EAFT_K = 20  # the EAFT paper's K (top-K entropy, and the gate's normaliser ln K)
EAFT_ENTROPY = "full"  # the exact entropy of TRL's fused head; "topk": the paper's approximation
EAFT_ENTROPIES = ("full", "topk")

# Which fields mean something for which token loss (loss_type), beyond the estimator's
TOKEN_LOSS_FIELDS = {"cadft": ("cadft_token_power",), "asft": ("asft_kl_coef",),
                     "eaft": ("eaft_alpha", "eaft_k", "eaft_entropy")}
TOKEN_LOSS_DEFAULTS = {"cadft_token_power": TOKEN_POWER, "asft_kl_coef": ASFT_KL_COEF, "eaft_alpha": EAFT_ALPHA,
                       "eaft_k": EAFT_K, "eaft_entropy": EAFT_ENTROPY}

# Which fields mean something for which estimator
ZSCORE_FIELDS = ("cadft_eps", "cadft_scope")
RUNNING_FIELDS = ("cadft_w_min", "cadft_w_max", "cadft_ema_decay", "cadft_calibration_samples")


class ForeignOptions(ValueError):
    """Options given that the chosen estimator does not read (`resolve_estimator_options`)."""

    def __init__(self, message: str, given: list[str]):
        super().__init__(message)
        self.given = given


def sample_weights_of(loss_type: str, normalization: str | None) -> str:
    """The estimator a run trains: `cadft_estimator` where given, else the loss type's own
    (the paper's z-score for 'cadft'; none for the bare token losses 'nll', 'dft', 'asft', 'eaft')."""
    if normalization is not None:
        return normalization
    return NORMALIZATION if loss_type == "cadft" else NO_WEIGHTS


def resolve_token_loss_options(loss_type: str, options: dict, name=lambda field: field) -> dict:
    """Check the token loss's options (TOKEN_LOSS_FIELDS, None where not given) and fill in the
    chosen loss type's defaults; an option of another loss type is a ValueError that names
    which loss type reads it."""
    options = dict(options)
    own = TOKEN_LOSS_FIELDS.get(loss_type, ())
    for owner, fields in TOKEN_LOSS_FIELDS.items():
        given = [f for f in fields if options.get(f) is not None and owner != loss_type]
        if given:
            names = ", ".join(name(f) for f in given)
            raise ValueError(f"{names} {'has' if len(given) == 1 else 'have'} no meaning for loss_type={loss_type!r}; "
                             f"{'it is' if len(given) == 1 else 'they are'} read by loss_type={owner!r}")
    for field in own:
        if options.get(field) is None:
            options[field] = TOKEN_LOSS_DEFAULTS[field]
    power = options.get("cadft_token_power")
    if power is not None and not 0 <= power <= 1:
        raise ValueError(f"{name('cadft_token_power')} must be in [0, 1], got {power}")
    if options.get("asft_kl_coef") is not None and options["asft_kl_coef"] < 0:
        raise ValueError(f"{name('asft_kl_coef')} must be >= 0, got {options['asft_kl_coef']}")
    if options.get("eaft_alpha") is not None and not options["eaft_alpha"] > 0:
        raise ValueError(f"{name('eaft_alpha')} must be > 0, got {options['eaft_alpha']}")
    if options.get("eaft_k") is not None and options["eaft_k"] < 2:
        raise ValueError(f"{name('eaft_k')} must be >= 2 (the gate divides by ln K), got {options['eaft_k']}")
    if options.get("eaft_entropy") is not None and options["eaft_entropy"] not in EAFT_ENTROPIES:
        raise ValueError(f"{name('eaft_entropy')}={options['eaft_entropy']!r} is not valid; choose one of "
                         f"{', '.join(EAFT_ENTROPIES)}")
    return options


def resolve_estimator_options(options: dict, name=lambda field: field) -> dict:
    """Check the estimator's options and fill in the defaults of the chosen one: the one
    check `CADFTConfig` and `cadft score` share. `options` maps CADFTConfig field names
    (`cadft_estimator`, `cadft_beta`, ...; `cadft_normalizer`, a fixed m, for `cadft
    score`) to values, None where not given; `name(field)` is how the caller spells a field
    in its messages. Returns the options, defaults filled in; raises ValueError (an option
    of the other estimator: `ForeignOptions`)."""
    options = dict(options)
    normalization = options["cadft_estimator"]
    if normalization == NO_WEIGHTS:  # a bare token loss: no estimator field means anything
        given = [f for f in (*ZSCORE_FIELDS, *RUNNING_FIELDS, "cadft_normalizer") if options.get(f) is not None]
        if given:
            names = [name(f) for f in given]
            raise ForeignOptions(f"{', '.join(names)} {'has' if len(given) == 1 else 'have'} no meaning for "
                                 f"cadft_estimator='none' (no sample weights); choose 'zscore', 'ema' or 'batch' "
                                 "to weigh the samples.", names)
        return options
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"{name('cadft_estimator')}={normalization!r} is not valid; choose one of "
                         f"{', '.join(SAMPLE_WEIGHTS)}")
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
            f"{', '.join(names)} {'has' if len(given) == 1 else 'have'} no meaning for cadft_estimator="
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


def renamed(options: dict, *, spelled=lambda name: name) -> dict:
    """`options` (config field -> value, None = not given) with each old field name of
    RENAMED moved to its new one, warning that names the new one; both given with different
    values is an error. `spelled` writes a field as the caller's user wrote it (a flag)."""
    import warnings

    out = dict(options)
    for old, new in RENAMED.items():
        value = out.pop(old, None)
        if value is None:
            continue
        warnings.warn(f"{spelled(old)} is renamed {spelled(new)} (it chooses the estimator); the old name will be "
                      "removed", FutureWarning, stacklevel=3)
        if out.get(new) is not None and out[new] != value:
            raise ValueError(f"{spelled(old)}={value!r} and {spelled(new)}={out[new]!r} disagree: give "
                             f"{spelled(new)} alone")
        out[new] = value
    return out
