"""`cadft train --help` and its flags, generated from the live parser by
`python -m cadft.cli.train_flags`: do not edit (tests/test_startup.py checks it is current)."""
# ruff: noqa: E501

HELP = (
    'usage: cadft train [options]\n'
    '\n'
    '`cadft train`: fine-tune with SFT, DFT or CADFT.\n'
    '\n'
    'options:\n'
    '  -h, --help            show this help message and exit\n'
    '  --dataset_path DATASET_PATH, --dataset-path DATASET_PATH\n'
    '                        Local .jsonl/.json/.parquet/.csv file in any TRL format or GSM8K/MATH\n'
    '                        format. (default: None)\n'
    '  --dataset_name DATASET_NAME, --dataset-name DATASET_NAME\n'
    '                        Hub dataset name (when a hub is reachable). (default: None)\n'
    '  --dataset_config DATASET_CONFIG, --dataset-config DATASET_CONFIG\n'
    '                        Hub dataset configuration name. (default: None)\n'
    '  --dataset_train_split DATASET_TRAIN_SPLIT, --dataset-train-split DATASET_TRAIN_SPLIT\n'
    '                        Split of a hub dataset to train on. (default: train)\n'
    '  --max_train_samples MAX_TRAIN_SAMPLES, --max-train-samples MAX_TRAIN_SAMPLES\n'
    '                        Keep only the first N training rows. (default: None)\n'
    '  --tag_column TAG_COLUMN, --tag-column TAG_COLUMN\n'
    '                        Column that groups the closing summary (ignored if the data lacks it).\n'
    '                        (default: kind)\n'
    '  --embedded_num_demos EMBEDDED_NUM_DEMOS, --embedded-num-demos EMBEDDED_NUM_DEMOS\n'
    '                        Embedded data: number of demonstrations. (default: 48)\n'
    '  --embedded_frac_foreign EMBEDDED_FRAC_FOREIGN, --embedded-frac-foreign EMBEDDED_FRAC_FOREIGN\n'
    '                        Embedded data: fraction in a foreign style. (default: 0.25)\n'
    '  --embedded_frac_wrong EMBEDDED_FRAC_WRONG, --embedded-frac-wrong EMBEDDED_FRAC_WRONG\n'
    '                        Embedded data: fraction with a wrong answer. (default: 0.25)\n'
    '  --embedded_seed EMBEDDED_SEED, --embedded-seed EMBEDDED_SEED\n'
    '                        Embedded data: generator seed. (default: 0)\n'
    '  --summary [SUMMARY]   Score the training set before and after training and print the summary.\n'
    '                        (default: True)\n'
    '  --no_summary, --no-summary\n'
    '                        Score the training set before and after training and print the summary.\n'
    '                        (default: False)\n'
    '  --output_dir OUTPUT_DIR, --output-dir OUTPUT_DIR\n'
    '                        The output directory where the model predictions and checkpoints will be\n'
    '                        written. (default: cadft-output)\n'
    '  --per_device_train_batch_size PER_DEVICE_TRAIN_BATCH_SIZE, --per-device-train-batch-size PER_DEVICE_TRAIN_BATCH_SIZE\n'
    '                        The batch size per device for training. (default: 8)\n'
    '  --num_train_epochs NUM_TRAIN_EPOCHS, --num-train-epochs NUM_TRAIN_EPOCHS\n'
    '                        Total number of training epochs to perform. (default: 1.0)\n'
    '  --max_steps MAX_STEPS, --max-steps MAX_STEPS\n'
    '                        Overrides `num_train_epochs`. If set to a positive number, the total number\n'
    '                        of training steps to perform. Must be set when the training dataset does not\n'
    '                        implement `__len__` (e.g. a streaming dataset). (default: -1)\n'
    '  --learning_rate LEARNING_RATE, --learning-rate LEARNING_RATE\n'
    '                        The initial learning rate for AdamW. (default: 0.0005)\n'
    '  --lr_scheduler_type {linear,cosine,cosine_with_restarts,polynomial,constant,constant_with_warmup,inverse_sqrt,reduce_lr_on_plateau,cosine_with_min_lr,cosine_warmup_with_min_lr,warmup_stable_decay,greedy}, --lr-scheduler-type {linear,cosine,cosine_with_restarts,polynomial,constant,constant_with_warmup,inverse_sqrt,reduce_lr_on_plateau,cosine_with_min_lr,cosine_warmup_with_min_lr,warmup_stable_decay,greedy}\n'
    '                        The learning rate scheduler type to use. See `SchedulerType` for all\n'
    '                        possible values. (default: linear)\n'
    '  --lr_scheduler_kwargs LR_SCHEDULER_KWARGS, --lr-scheduler-kwargs LR_SCHEDULER_KWARGS\n'
    "                        Additional parameters for the lr_scheduler, such as {'num_cycles': 1} for\n"
    '                        cosine with hard restarts. See the documentation of each scheduler for\n'
    '                        possible values. (default: None)\n'
    '  --warmup_steps WARMUP_STEPS, --warmup-steps WARMUP_STEPS\n'
    '                        Number of steps for a linear warmup from 0 to `learning_rate`. Can be an\n'
    '                        integer (exact steps) or a float in [0, 1) (ratio of total steps). (default:\n'
    '                        0)\n'
    '  --optim {adamw_torch,adamw_torch_fused,adamw_torch_xla,adamw_torch_npu_fused,adafactor,adamw_anyprecision,adamw_torch_4bit,adamw_torch_8bit,ademamix,sgd,adagrad,adamw_bnb_8bit,adamw_8bit,ademamix_8bit,lion_8bit,lion_32bit,paged_adamw_32bit,paged_adamw_8bit,paged_ademamix_32bit,paged_ademamix_8bit,paged_lion_32bit,paged_lion_8bit,rmsprop,rmsprop_bnb,rmsprop_bnb_8bit,rmsprop_bnb_32bit,galore_adamw,galore_adamw_8bit,galore_adafactor,galore_adamw_layerwise,galore_adamw_8bit_layerwise,galore_adafactor_layerwise,lomo,adalomo,grokadamw,schedule_free_radam,schedule_free_adamw,schedule_free_sgd,apollo_adamw,apollo_adamw_layerwise,stable_adamw}\n'
    '                        The optimizer to use. See `OptimizerNames` for the complete list. (default:\n'
    '                        adamw_torch_fused)\n'
    '  --optim_args OPTIM_ARGS, --optim-args OPTIM_ARGS\n'
    '                        Optional arguments supplied to optimizers such as AnyPrecisionAdamW,\n'
    '                        AdEMAMix, and GaLore. (default: None)\n'
    '  --weight_decay WEIGHT_DECAY, --weight-decay WEIGHT_DECAY\n'
    '                        Weight decay coefficient applied by the optimizer. Automatically excluded\n'
    '                        from bias and LayerNorm parameters. (default: 0.0)\n'
    '  --adam_beta1 ADAM_BETA1, --adam-beta1 ADAM_BETA1\n'
    '                        The exponential decay rate for the first moment estimates (momentum) in\n'
    '                        Adam-based optimizers. (default: 0.9)\n'
    '  --adam_beta2 ADAM_BETA2, --adam-beta2 ADAM_BETA2\n'
    '                        The exponential decay rate for the second moment estimates (variance) in\n'
    '                        Adam-based optimizers. (default: 0.999)\n'
    '  --adam_epsilon ADAM_EPSILON, --adam-epsilon ADAM_EPSILON\n'
    '                        Epsilon value for numerical stability in Adam-based optimizers. (default:\n'
    '                        1e-08)\n'
    '  --optim_target_modules OPTIM_TARGET_MODULES, --optim-target-modules OPTIM_TARGET_MODULES\n'
    '                        The target modules to optimize. Currently used for the GaLore and APOLLO\n'
    '                        algorithms. (default: None)\n'
    '  --gradient_accumulation_steps GRADIENT_ACCUMULATION_STEPS, --gradient-accumulation-steps GRADIENT_ACCUMULATION_STEPS\n'
    '                        Number of update steps to accumulate gradients before performing a\n'
    '                        backward/update pass. Effective batch size = per_device_train_batch_size *\n'
    '                        num_devices * gradient_accumulation_steps. (default: 1)\n'
    '  --average_tokens_across_devices [AVERAGE_TOKENS_ACROSS_DEVICES], --average-tokens-across-devices [AVERAGE_TOKENS_ACROSS_DEVICES]\n'
    '                        Whether or not to average tokens across devices. If enabled, will use\n'
    '                        all_reduce to synchronize num_tokens_in_batch for precise loss calculation.\n'
    '                        Reference: https://github.com/huggingface/transformers/issues/34242\n'
    '                        (default: True)\n'
    '  --no_average_tokens_across_devices, --no-average-tokens-across-devices\n'
    '                        Whether or not to average tokens across devices. If enabled, will use\n'
    '                        all_reduce to synchronize num_tokens_in_batch for precise loss calculation.\n'
    '                        Reference: https://github.com/huggingface/transformers/issues/34242\n'
    '                        (default: False)\n'
    '  --max_grad_norm MAX_GRAD_NORM, --max-grad-norm MAX_GRAD_NORM\n'
    '                        Maximum gradient norm for gradient clipping. Set to 0 to disable. (default:\n'
    '                        1.0)\n'
    '  --label_smoothing_factor LABEL_SMOOTHING_FACTOR, --label-smoothing-factor LABEL_SMOOTHING_FACTOR\n'
    '                        Label smoothing factor to prevent overconfidence. Zero means no smoothing.\n'
    '                        (default: 0.0)\n'
    '  --bf16 BF16           Whether to use bf16 (mixed) precision instead of 32-bit. If not set: True\n'
    '                        when training runs on an accelerator with bf16 support (Ampere+ GPU, XPU,\n'
    '                        NPU, TPU) and fp16 is not set, else False (float32). (default: True on a\n'
    '                        CUDA GPU, else False)\n'
    '  --fp16 [FP16]         Enable float16 (FP16) mixed precision training. Consider using BF16 instead\n'
    '                        if your hardware supports it. (default: False)\n'
    '  --bf16_full_eval [BF16_FULL_EVAL], --bf16-full-eval [BF16_FULL_EVAL]\n'
    '                        Use full BF16 precision for evaluation (not just mixed precision). Faster\n'
    '                        and saves memory. (default: False)\n'
    '  --fp16_full_eval [FP16_FULL_EVAL], --fp16-full-eval [FP16_FULL_EVAL]\n'
    '                        Use full FP16 precision for evaluation (not just mixed precision). Faster\n'
    '                        and saves memory. (default: False)\n'
    '  --tf32 TF32           Enable TF32 mode on Ampere and newer GPUs. Provides up to 8x speedup with\n'
    '                        negligible accuracy loss. (default: None)\n'
    '  --activation_checkpointing [ACTIVATION_CHECKPOINTING], --activation-checkpointing [ACTIVATION_CHECKPOINTING]\n'
    '                        Enable activation checkpointing to trade compute for memory. Reduces memory\n'
    '                        at the cost of ~20% slower training. (default: None)\n'
    '  --activation_checkpointing_kwargs ACTIVATION_CHECKPOINTING_KWARGS, --activation-checkpointing-kwargs ACTIVATION_CHECKPOINTING_KWARGS\n'
    '                        Keyword arguments passed to `activation_checkpointing_enable()`.\n'
    '                        `every_n_layers` checkpoints only every n-th decoder layer instead of all of\n'
    '                        them; `1` is the usual all-or-nothing behavior, and larger values give some\n'
    '                        memory back to speed. `offload` holds the saved activations in pinned host\n'
    '                        memory, which frees device memory and makes the step slower. Any other key\n'
    '                        is forwarded to `torch.utils.checkpoint.checkpoint`. (default: None)\n'
    '  --gradient_checkpointing [GRADIENT_CHECKPOINTING], --gradient-checkpointing [GRADIENT_CHECKPOINTING]\n'
    '                        Enable gradient checkpointing to trade compute for memory. Reduces memory at\n'
    '                        the cost of ~20% slower training. (default: False)\n'
    '  --no_gradient_checkpointing, --no-gradient-checkpointing\n'
    '                        Enable gradient checkpointing to trade compute for memory. Reduces memory at\n'
    '                        the cost of ~20% slower training. (default: False)\n'
    '  --gradient_checkpointing_kwargs GRADIENT_CHECKPOINTING_KWARGS, --gradient-checkpointing-kwargs GRADIENT_CHECKPOINTING_KWARGS\n'
    '                        Deprecated alias of `activation_checkpointing_kwargs`, will be removed in\n'
    '                        v6. (default: None)\n'
    '  --torch_compile [TORCH_COMPILE], --torch-compile [TORCH_COMPILE]\n'
    '                        Compile the model using `torch.compile()` for faster training. (default:\n'
    '                        False)\n'
    '  --torch_compile_backend TORCH_COMPILE_BACKEND, --torch-compile-backend TORCH_COMPILE_BACKEND\n'
    '                        Backend for `torch.compile()`. If set, automatically enables\n'
    '                        `torch_compile`. (default: None)\n'
    '  --torch_compile_mode TORCH_COMPILE_MODE, --torch-compile-mode TORCH_COMPILE_MODE\n'
    '                        Compilation mode for `torch.compile()`. If set, automatically enables\n'
    '                        `torch_compile`. (default: None)\n'
    '  --use_liger_kernel [USE_LIGER_KERNEL], --use-liger-kernel [USE_LIGER_KERNEL]\n'
    "                        Enable Liger Kernel optimizations: transformers patches the model's layers\n"
    "                        with Liger's Triton kernels. Deprecated in `SFTTrainer`, `DPOTrainer`,\n"
    '                        `KTOTrainer`, `GRPOTrainer` and `RLOOTrainer`, and will be removed in\n'
    '                        v2.0.0: use `model_init_kwargs={"use_kernels": True}` instead. (default:\n'
    '                        False)\n'
    '  --liger_kernel_config LIGER_KERNEL_CONFIG, --liger-kernel-config LIGER_KERNEL_CONFIG\n'
    '                        Configuration for Liger Kernel. Passed as kwargs to\n'
    '                        `_apply_liger_kernel_to_instance()`. If None, uses default configuration.\n'
    '                        (default: None)\n'
    '  --use_cache [USE_CACHE], --use-cache [USE_CACHE]\n'
    '                        Whether or not to use cache for the model For training, this is usually not\n'
    '                        needed apart from some PEFT methods that uses `cache`. (default: False)\n'
    '  --neftune_noise_alpha NEFTUNE_NOISE_ALPHA, --neftune-noise-alpha NEFTUNE_NOISE_ALPHA\n'
    '                        If not None, activates NEFTune noise embeddings. Can drastically improve\n'
    '                        performance for instruction fine-tuning. Typical range: [5.0, 15.0].\n'
    '                        (default: None)\n'
    '  --torch_empty_cache_steps TORCH_EMPTY_CACHE_STEPS, --torch-empty-cache-steps TORCH_EMPTY_CACHE_STEPS\n'
    '                        Number of steps to wait before calling `torch.<device>.empty_cache()`. Helps\n'
    '                        avoid CUDA OOM at a cost of ~10% slower performance. If None, cache will not\n'
    '                        be emptied. (default: None)\n'
    '  --auto_find_batch_size [AUTO_FIND_BATCH_SIZE], --auto-find-batch-size [AUTO_FIND_BATCH_SIZE]\n'
    '                        Whether to find a training batch size that will fit into memory\n'
    '                        automatically through exponential decay, avoiding CUDA Out-of-Memory errors.\n'
    '                        The evaluation batch size is not adjusted. (default: False)\n'
    '  --logging_strategy {no,steps,epoch}, --logging-strategy {no,steps,epoch}\n'
    "                        The logging strategy to adopt during training. Options: 'no', 'epoch',\n"
    "                        'steps'. (default: steps)\n"
    '  --logging_steps LOGGING_STEPS, --logging-steps LOGGING_STEPS\n'
    '                        Log every X updates steps. Should be an integer or a float in range `[0,1)`.\n'
    '                        If smaller than 1, will be interpreted as ratio of total training steps.\n'
    '                        (default: 1)\n'
    '  --logging_first_step [LOGGING_FIRST_STEP], --logging-first-step [LOGGING_FIRST_STEP]\n'
    '                        Whether to log the first `global_step` or not. (default: False)\n'
    '  --log_on_each_node [LOG_ON_EACH_NODE], --log-on-each-node [LOG_ON_EACH_NODE]\n'
    '                        When doing a multinode distributed training, whether to log once per node or\n'
    '                        just once on the main node. (default: True)\n'
    '  --no_log_on_each_node, --no-log-on-each-node\n'
    '                        When doing a multinode distributed training, whether to log once per node or\n'
    '                        just once on the main node. (default: False)\n'
    '  --logging_nan_inf_filter [LOGGING_NAN_INF_FILTER], --logging-nan-inf-filter [LOGGING_NAN_INF_FILTER]\n'
    '                        Filter out NaN and Inf training and evaluation losses when logging. Does not\n'
    '                        affect gradient computation, only logging. (default: True)\n'
    '  --no_logging_nan_inf_filter, --no-logging-nan-inf-filter\n'
    '                        Filter out NaN and Inf training and evaluation losses when logging. Does not\n'
    '                        affect gradient computation, only logging. (default: False)\n'
    '  --include_num_input_tokens_seen [INCLUDE_NUM_INPUT_TOKENS_SEEN], --include-num-input-tokens-seen [INCLUDE_NUM_INPUT_TOKENS_SEEN]\n'
    '                        Whether to track the number of input tokens seen. Must be one of [`all`,\n'
    '                        `non_padding`, `no`] or a boolean value which map to `all` or `no` (default:\n'
    '                        no)\n'
    '  --log_level {detail,debug,info,warning,error,critical,passive}, --log-level {detail,debug,info,warning,error,critical,passive}\n'
    "                        Logging level for the main process. Options: 'debug', 'info', 'warning',\n"
    "                        'error', 'critical', 'passive'. (default: passive)\n"
    '  --log_level_replica {detail,debug,info,warning,error,critical,passive}, --log-level-replica {detail,debug,info,warning,error,critical,passive}\n'
    '                        Logging level for replica processes in distributed training. Same options as\n'
    '                        `log_level`. (default: error)\n'
    '  --disable_tqdm DISABLE_TQDM, --disable-tqdm DISABLE_TQDM\n'
    '                        Disable tqdm progress bars. Defaults to True if log_level is warning or\n'
    '                        lower. (default: None)\n'
    '  --report_to REPORT_TO, --report-to REPORT_TO\n'
    "                        The list of integrations to report the results and logs to. Use 'all' for\n"
    "                        all installed integrations, 'none' for no integrations. (default: none)\n"
    '  --run_name RUN_NAME, --run-name RUN_NAME\n'
    '                        An optional descriptor for the run. Notably used for trackio, wandb, mlflow\n'
    '                        comet and swanlab logging. (default: None)\n'
    '  --project PROJECT     The name of the project to use for logging. Currently, only used by Trackio.\n'
    '                        (default: huggingface)\n'
    '  --trackio_space_id TRACKIO_SPACE_ID, --trackio-space-id TRACKIO_SPACE_ID\n'
    '                        Hugging Face Space id for live Gradio-based Trackio logging (read/write\n'
    "                        Bucket access). Use 'username/reponame', 'orgname/reponame', or 'reponame'\n"
    "                        (current user's namespace). None: log only locally, no Space. Prefer\n"
    '                        trackio_static_space_id for stable post-training dashboard links. Public\n'
    '                        unless hub_private_repo=True or org default. (default: None)\n'
    '  --trackio_bucket_id TRACKIO_BUCKET_ID, --trackio-bucket-id TRACKIO_BUCKET_ID\n'
    '                        Optional HF Bucket id when using a Trackio Space; if unset, Trackio picks a\n'
    '                        default. (default: None)\n'
    '  --trackio_static_space_id TRACKIO_STATIC_SPACE_ID, --trackio-static-space-id TRACKIO_STATIC_SPACE_ID\n'
    '                        Static read-only Trackio Space over the Bucket (stable model-card links).\n'
    '                        False: no static sync on Hub push and no freeze after training. None/str:\n'
    '                        allow static Space; for local-only logging, Hub push runs sync(static);\n'
    '                        after training, freeze runs only if trackio_space_id was set (Gradio Space).\n'
    '                        str sets explicit static Space id. Public unless hub_private_repo=True or\n'
    '                        org default. (default: None)\n'
    '  --eval_strategy {no,steps,epoch}, --eval-strategy {no,steps,epoch}\n'
    "                        When to run evaluation. Options: 'no', 'steps', 'epoch'. (default: no)\n"
    '  --eval_steps EVAL_STEPS, --eval-steps EVAL_STEPS\n'
    "                        Number of update steps between evaluations if `eval_strategy='steps'`.\n"
    '                        Defaults to `logging_steps` if not set. Should be an integer or a float in\n'
    '                        range `[0,1)`. If smaller than 1, will be interpreted as ratio of total\n'
    '                        training steps. (default: None)\n'
    '  --eval_delay EVAL_DELAY, --eval-delay EVAL_DELAY\n'
    '                        Number of epochs or steps to wait for before the first evaluation can be\n'
    '                        performed, depending on the eval_strategy. (default: 0)\n'
    '  --per_device_eval_batch_size PER_DEVICE_EVAL_BATCH_SIZE, --per-device-eval-batch-size PER_DEVICE_EVAL_BATCH_SIZE\n'
    '                        The batch size per device (GPU/TPU core/CPU) for evaluation. (default: 8)\n'
    '  --prediction_loss_only [PREDICTION_LOSS_ONLY], --prediction-loss-only [PREDICTION_LOSS_ONLY]\n'
    '                        When performing evaluation and generating predictions, only returns the\n'
    '                        loss. (default: False)\n'
    '  --eval_on_start [EVAL_ON_START], --eval-on-start [EVAL_ON_START]\n'
    '                        Whether to run through the entire `evaluation` step at the very beginning of\n'
    '                        training as a sanity check. (default: False)\n'
    '  --eval_do_concat_batches [EVAL_DO_CONCAT_BATCHES], --eval-do-concat-batches [EVAL_DO_CONCAT_BATCHES]\n'
    '                        Whether to recursively concat inputs/losses/labels/predictions across\n'
    '                        batches. If `False`, will instead store them as lists, with each batch kept\n'
    '                        separate. (default: True)\n'
    '  --no_eval_do_concat_batches, --no-eval-do-concat-batches\n'
    '                        Whether to recursively concat inputs/losses/labels/predictions across\n'
    '                        batches. If `False`, will instead store them as lists, with each batch kept\n'
    '                        separate. (default: False)\n'
    '  --eval_use_gather_object [EVAL_USE_GATHER_OBJECT], --eval-use-gather-object [EVAL_USE_GATHER_OBJECT]\n'
    '                        Whether to run recursively gather object in a nested list/tuple/dictionary\n'
    '                        of objects from all devices. (default: False)\n'
    '  --eval_accumulation_steps EVAL_ACCUMULATION_STEPS, --eval-accumulation-steps EVAL_ACCUMULATION_STEPS\n'
    '                        Number of predictions steps to accumulate the output tensors for, before\n'
    '                        moving the results to the CPU. If unset, predictions are accumulated on the\n'
    '                        accelerator before being moved to the CPU. (default: None)\n'
    '  --include_for_metrics INCLUDE_FOR_METRICS [INCLUDE_FOR_METRICS ...], --include-for-metrics INCLUDE_FOR_METRICS [INCLUDE_FOR_METRICS ...]\n'
    '                        Include additional data in the `compute_metrics` function. Options:\n'
    "                        'inputs', 'loss'. (default: [])\n"
    '  --batch_eval_metrics [BATCH_EVAL_METRICS], --batch-eval-metrics [BATCH_EVAL_METRICS]\n'
    '                        Break eval metrics calculation into batches to save memory. (default: False)\n'
    '  --save_only_model [SAVE_ONLY_MODEL], --save-only-model [SAVE_ONLY_MODEL]\n'
    '                        Save only model weights, not optimizer/scheduler/RNG state. Prevents\n'
    '                        resuming training from checkpoint. (default: False)\n'
    '  --save_strategy {no,steps,epoch,best}, --save-strategy {no,steps,epoch,best}\n'
    "                        The checkpoint save strategy to adopt during training. Options: 'no',\n"
    "                        'epoch', 'steps', 'best'. (default: steps)\n"
    '  --save_steps SAVE_STEPS, --save-steps SAVE_STEPS\n'
    '                        Save checkpoint every X updates steps. Should be an integer or a float in\n'
    '                        range `[0,1)`. If smaller than 1, will be interpreted as ratio of total\n'
    '                        training steps. (default: 4)\n'
    '  --save_on_each_node [SAVE_ON_EACH_NODE], --save-on-each-node [SAVE_ON_EACH_NODE]\n'
    '                        When doing multi-node distributed training, whether to save models and\n'
    '                        checkpoints on each node, or only on the main one (default: False)\n'
    '  --save_total_limit SAVE_TOTAL_LIMIT, --save-total-limit SAVE_TOTAL_LIMIT\n'
    '                        Maximum number of checkpoints to keep. Deletes older checkpoints in\n'
    '                        `output_dir`. The best checkpoint is always retained when\n'
    '                        `load_best_model_at_end=True`. (default: 2)\n'
    '  --enable_jit_checkpoint [ENABLE_JIT_CHECKPOINT], --enable-jit-checkpoint [ENABLE_JIT_CHECKPOINT]\n'
    '                        Enable JIT checkpointing on SIGTERM signal for graceful termination on\n'
    "                        preemptible workloads. Configure your orchestrator's graceful shutdown\n"
    '                        period accordingly. (default: False)\n'
    '  --push_to_hub [PUSH_TO_HUB], --push-to-hub [PUSH_TO_HUB]\n'
    '                        Whether or not to push the model to the Hub every time the model is saved.\n'
    '                        (default: False)\n'
    '  --hub_token HUB_TOKEN, --hub-token HUB_TOKEN\n'
    '                        The token to use to push the model to the Hub. Defaults to the token from\n'
    '                        `hf auth login`. (default: None)\n'
    '  --hub_private_repo HUB_PRIVATE_REPO, --hub-private-repo HUB_PRIVATE_REPO\n'
    '                        Whether to make the repo private. If `None` (default), the repo will be\n'
    "                        public unless the organization's default is private. This value is ignored\n"
    '                        if the repo already exists. If reporting to Trackio Spaces created or synced\n'
    '                        (including on Hub push when `trackio_space_id` is None) use the same logic\n'
    '                        for whether the Space is private. (default: None)\n'
    '  --hub_model_id HUB_MODEL_ID, --hub-model-id HUB_MODEL_ID\n'
    '                        The name of the repository to keep in sync with the local `output_dir`.\n'
    '                        (default: None)\n'
    '  --hub_strategy {end,every_save,checkpoint,all_checkpoints}, --hub-strategy {end,every_save,checkpoint,all_checkpoints}\n'
    "                        Defines what and when to push to Hub. Options: 'end', 'every_save',\n"
    "                        'checkpoint', 'all_checkpoints'. (default: every_save)\n"
    '  --hub_always_push [HUB_ALWAYS_PUSH], --hub-always-push [HUB_ALWAYS_PUSH]\n'
    "                        Unless `True`, the Trainer will skip pushes if the previous one wasn't\n"
    '                        finished yet. (default: False)\n'
    '  --hub_revision HUB_REVISION, --hub-revision HUB_REVISION\n'
    '                        The revision to use when pushing to the Hub. Can be a branch name, a tag, or\n'
    '                        a commit hash. (default: None)\n'
    '  --load_best_model_at_end [LOAD_BEST_MODEL_AT_END], --load-best-model-at-end [LOAD_BEST_MODEL_AT_END]\n'
    '                        Load the best checkpoint at the end of training. Requires `eval_strategy` to\n'
    '                        be set. (default: False)\n'
    '  --metric_for_best_model METRIC_FOR_BEST_MODEL, --metric-for-best-model METRIC_FOR_BEST_MODEL\n'
    '                        Metric to use for comparing models when `load_best_model_at_end=True`.\n'
    "                        Defaults to 'loss'. (default: None)\n"
    '  --greater_is_better GREATER_IS_BETTER, --greater-is-better GREATER_IS_BETTER\n'
    '                        Whether higher metric values are better. Defaults based on\n'
    '                        `metric_for_best_model`. (default: None)\n'
    '  --ignore_data_skip [IGNORE_DATA_SKIP], --ignore-data-skip [IGNORE_DATA_SKIP]\n'
    '                        When resuming training, skip fast-forwarding through the dataset to reach\n'
    '                        the previous state. If True, training starts from the beginning of the\n'
    '                        dataset. (default: False)\n'
    '  --restore_callback_states_from_checkpoint [RESTORE_CALLBACK_STATES_FROM_CHECKPOINT], --restore-callback-states-from-checkpoint [RESTORE_CALLBACK_STATES_FROM_CHECKPOINT]\n'
    '                        Whether to restore the callback states from the checkpoint. If `True`, will\n'
    '                        override callbacks passed to the `Trainer` if they exist in the checkpoint.\n'
    '                        (default: False)\n'
    '  --full_determinism [FULL_DETERMINISM], --full-determinism [FULL_DETERMINISM]\n'
    '                        Whether to call enable_full_determinism instead of set_seed for\n'
    '                        reproducibility in distributed training. Important: this will negatively\n'
    '                        impact the performance, so only use it for debugging. (default: False)\n'
    '  --seed SEED           Random seed that will be set at the beginning of training. (default: 42)\n'
    '  --data_seed DATA_SEED, --data-seed DATA_SEED\n'
    '                        Random seed to be used with data samplers. If not set, uses the same seed as\n'
    '                        `seed`. (default: None)\n'
    '  --use_cpu [USE_CPU], --use-cpu [USE_CPU]\n'
    '                        Whether or not to use cpu. If set to False, we will use the available torch\n'
    '                        device/backend. (default: False)\n'
    '  --accelerator_config ACCELERATOR_CONFIG, --accelerator-config ACCELERATOR_CONFIG\n'
    '                        Configuration for the internal Accelerate integration. Can be a path to a\n'
    '                        JSON config file or a dict. (default: None)\n'
    '  --parallelism_config PARALLELISM_CONFIG, --parallelism-config PARALLELISM_CONFIG\n'
    '                        Parallelism configuration for the training run. Requires Accelerate\n'
    '                        `1.10.1`. (default: None)\n'
    '  --dataloader_drop_last [DATALOADER_DROP_LAST], --dataloader-drop-last [DATALOADER_DROP_LAST]\n'
    '                        Drop the last incomplete batch if it is not divisible by the batch size.\n'
    '                        (default: False)\n'
    '  --dataloader_num_workers DATALOADER_NUM_WORKERS, --dataloader-num-workers DATALOADER_NUM_WORKERS\n'
    '                        Number of subprocesses to use for data loading (PyTorch only). 0 means that\n'
    '                        the data will be loaded in the main process. (default: 0)\n'
    '  --dataloader_pin_memory [DATALOADER_PIN_MEMORY], --dataloader-pin-memory [DATALOADER_PIN_MEMORY]\n'
    '                        Whether or not to pin memory for DataLoader. (default: True)\n'
    '  --no_dataloader_pin_memory, --no-dataloader-pin-memory\n'
    '                        Whether or not to pin memory for DataLoader. (default: False)\n'
    '  --dataloader_persistent_workers [DATALOADER_PERSISTENT_WORKERS], --dataloader-persistent-workers [DATALOADER_PERSISTENT_WORKERS]\n'
    '                        If True, the data loader will not shut down the worker processes after a\n'
    '                        dataset has been consumed once. This allows to maintain the workers Dataset\n'
    '                        instances alive. Can potentially speed up training, but will increase RAM\n'
    '                        usage. (default: False)\n'
    '  --dataloader_prefetch_factor DATALOADER_PREFETCH_FACTOR, --dataloader-prefetch-factor DATALOADER_PREFETCH_FACTOR\n'
    '                        Number of batches loaded in advance by each worker. 2 means there will be a\n'
    '                        total of 2 * num_workers batches prefetched across all workers. (default:\n'
    '                        None)\n'
    '  --dataloader_multiprocessing_context {fork,spawn,forkserver}, --dataloader-multiprocessing-context {fork,spawn,forkserver}\n'
    "                        The multiprocessing start method to use for data loading workers ('fork',\n"
    "                        'spawn', or 'forkserver'). Defaults to PyTorch's default, except on MPS with\n"
    "                        dataloader_num_workers > 1, where it defaults to 'fork'. Use 'spawn' when\n"
    '                        streaming from sources whose objects are not fork-safe (e.g. HDFS via\n'
    "                        pyarrow). Under 'spawn', any custom collate_fn / dataset code must be\n"
    '                        importable at module level (no lambdas/closures). (default: None)\n'
    '  --dataloader_in_order [DATALOADER_IN_ORDER], --dataloader-in-order [DATALOADER_IN_ORDER]\n'
    '                        If True (default), the data loader yields batches in the order workers were\n'
    '                        dispatched. Set to False to yield batches as soon as they are ready,\n'
    '                        reducing tail latency for IterableDataset streaming workloads. Requires\n'
    '                        PyTorch >= 2.6. (default: True)\n'
    '  --no_dataloader_in_order, --no-dataloader-in-order\n'
    '                        If True (default), the data loader yields batches in the order workers were\n'
    '                        dispatched. Set to False to yield batches as soon as they are ready,\n'
    '                        reducing tail latency for IterableDataset streaming workloads. Requires\n'
    '                        PyTorch >= 2.6. (default: False)\n'
    '  --remove_unused_columns [REMOVE_UNUSED_COLUMNS], --remove-unused-columns [REMOVE_UNUSED_COLUMNS]\n'
    '                        Whether or not to automatically remove the columns unused by the model\n'
    '                        forward method. (default: True)\n'
    '  --no_remove_unused_columns, --no-remove-unused-columns\n'
    '                        Whether or not to automatically remove the columns unused by the model\n'
    '                        forward method. (default: False)\n'
    '  --label_names LABEL_NAMES [LABEL_NAMES ...], --label-names LABEL_NAMES [LABEL_NAMES ...]\n'
    '                        The list of keys in your dictionary of inputs that correspond to the labels.\n'
    '                        (default: None)\n'
    '  --train_sampling_strategy {random,sequential,group_by_length,batch_rebalance}, --train-sampling-strategy {random,sequential,group_by_length,batch_rebalance}\n'
    "                        Sampler for training: 'random' (default), 'sequential', 'group_by_length',\n"
    "                        or 'batch_rebalance'. (default: random)\n"
    '  --length_column_name LENGTH_COLUMN_NAME, --length-column-name LENGTH_COLUMN_NAME\n'
    '                        Column name for precomputed lengths. Ignored unless\n'
    "                        `train_sampling_strategy` is 'group_by_length' or 'batch_rebalance'.\n"
    '                        (default: length)\n'
    '  --ddp_find_unused_parameters DDP_FIND_UNUSED_PARAMETERS, --ddp-find-unused-parameters DDP_FIND_UNUSED_PARAMETERS\n'
    '                        When using distributed training, the value of the flag\n'
    '                        `find_unused_parameters` passed to `DistributedDataParallel`. (default:\n'
    '                        None)\n'
    '  --ddp_bucket_cap_mb DDP_BUCKET_CAP_MB, --ddp-bucket-cap-mb DDP_BUCKET_CAP_MB\n'
    '                        When using distributed training, the value of the flag `bucket_cap_mb`\n'
    '                        passed to `DistributedDataParallel`. (default: None)\n'
    '  --ddp_broadcast_buffers DDP_BROADCAST_BUFFERS, --ddp-broadcast-buffers DDP_BROADCAST_BUFFERS\n'
    '                        When using distributed training, the value of the flag `broadcast_buffers`\n'
    '                        passed to `DistributedDataParallel`. (default: None)\n'
    '  --ddp_static_graph DDP_STATIC_GRAPH, --ddp-static-graph DDP_STATIC_GRAPH\n'
    '                        When using distributed training, the value of the flag `static_graph` passed\n'
    '                        to `DistributedDataParallel`. (default: None)\n'
    '  --ddp_backend {nccl,gloo,mpi,xccl,hccl,cncl,mccl}, --ddp-backend {nccl,gloo,mpi,xccl,hccl,cncl,mccl}\n'
    "                        The backend to use for distributed training. Must be one of 'nccl', 'mpi',\n"
    "                        'xccl', 'gloo', 'hccl'. (default: None)\n"
    '  --ddp_timeout DDP_TIMEOUT, --ddp-timeout DDP_TIMEOUT\n'
    '                        The timeout for `torch.distributed.init_process_group` calls (in seconds).\n'
    '                        (default: 1800)\n'
    '  --fsdp [FSDP]         Enable PyTorch Fully Sharded Data Parallel (FSDP) for distributed training.\n'
    '                        Pass `--fsdp` (or `fsdp=True`) to turn FSDP on. (default: None)\n'
    '  --fsdp_config FSDP_CONFIG, --fsdp-config FSDP_CONFIG\n'
    '                        Tuning for FSDP (used only when `fsdp` is enabled). Either a path to a JSON\n'
    '                        config file (e.g., `fsdp_config.json`) or an already loaded dict. (default:\n'
    '                        None)\n'
    '  --deepspeed DEEPSPEED\n'
    '                        Enable DeepSpeed integration. Value is a path to a JSON config file or a\n'
    '                        dict. (default: None)\n'
    '  --debug DEBUG [DEBUG ...]\n'
    "                        Enable one or more debug features. Options: 'underflow_overflow' (detect\n"
    "                        overflow in model I/O), 'tpu_metrics_debug' (print TPU metrics). (default:\n"
    '                        None)\n'
    '  --skip_memory_metrics [SKIP_MEMORY_METRICS], --skip-memory-metrics [SKIP_MEMORY_METRICS]\n'
    '                        Whether to skip adding memory profiler reports to metrics. Skipped by\n'
    '                        default because it slows down training. (default: True)\n'
    '  --no_skip_memory_metrics, --no-skip-memory-metrics\n'
    '                        Whether to skip adding memory profiler reports to metrics. Skipped by\n'
    '                        default because it slows down training. (default: False)\n'
    '  --do_train [DO_TRAIN], --do-train [DO_TRAIN]\n'
    '                        Whether to run training. Not directly used by Trainer; intended for\n'
    '                        training/evaluation scripts. (default: False)\n'
    '  --do_eval [DO_EVAL], --do-eval [DO_EVAL]\n'
    '                        Whether to run evaluation. Not directly used by Trainer; intended for\n'
    '                        training/evaluation scripts. (default: False)\n'
    '  --do_predict [DO_PREDICT], --do-predict [DO_PREDICT]\n'
    '                        Whether to run predictions on the test set. Not directly used by Trainer;\n'
    '                        intended for training/evaluation scripts. (default: False)\n'
    '  --resume_from_checkpoint RESUME_FROM_CHECKPOINT, --resume-from-checkpoint RESUME_FROM_CHECKPOINT\n'
    '                        Path to a folder with a valid checkpoint for your model. Not directly used\n'
    '                        by Trainer; intended for training/evaluation scripts. (default: None)\n'
    '  --local_rank LOCAL_RANK, --local-rank LOCAL_RANK\n'
    '                        When using torch.distributed.launch (Deprecated), it will pass `local_rank`\n'
    '                        in the script, so we need this for the parser. To get the local rank, prefer\n'
    '                        using the property `local_process_index` (default: -1)\n'
    '  --model_init_kwargs MODEL_INIT_KWARGS, --model-init-kwargs MODEL_INIT_KWARGS\n'
    '                        Keyword arguments for `AutoModelForCausalLM.from_pretrained`, used when the\n'
    '                        `model` argument of the `SFTTrainer` is provided as a string. The `revision`\n'
    '                        value is also used when loading the processing class. (default: None)\n'
    '  --trust_remote_code [TRUST_REMOTE_CODE], --trust-remote-code [TRUST_REMOTE_CODE]\n'
    '                        Whether to allow loading models and tokenizers that ship custom Python code\n'
    '                        from the Hub. Forwarded to `AutoModelForCausalLM.from_pretrained` and\n'
    '                        `AutoProcessor.from_pretrained`. (default: False)\n'
    '  --router_aux_loss_coef ROUTER_AUX_LOSS_COEF, --router-aux-loss-coef ROUTER_AUX_LOSS_COEF\n'
    '                        Coefficient of the load-balancing auxiliary loss for Mixture-of-Experts\n'
    '                        (MoE) models, added to the training loss with this weight. When not set, the\n'
    '                        value declared by the model config is used. Set to `0.0` to disable it.\n'
    '                        Fails when used with a non-MoE model. (default: None)\n'
    '  --chat_template_path CHAT_TEMPLATE_PATH, --chat-template-path CHAT_TEMPLATE_PATH\n'
    "                        If specified, sets the model's chat template. This can either be the path to\n"
    '                        a tokenizer (local directory or Hugging Face Hub model) or a direct path to\n'
    '                        a Jinja template file. When using a Jinja file, you must ensure that any\n'
    '                        special tokens referenced in the template are added to the tokenizer and\n'
    "                        that the model's embedding layer is resized accordingly. (default: None)\n"
    '  --dataset_text_field DATASET_TEXT_FIELD, --dataset-text-field DATASET_TEXT_FIELD\n'
    '                        Name of the column that contains text data in the dataset. (default: text)\n'
    '  --dataset_kwargs DATASET_KWARGS, --dataset-kwargs DATASET_KWARGS\n'
    '                        Dictionary of optional keyword arguments for the dataset preparation. The\n'
    '                        only supported key is `skip_prepare_dataset`. When the dataset contains\n'
    '                        images, `skip_prepare_dataset` is automatically treated as `True` regardless\n'
    '                        of the provided value, since preprocessing is done on the fly. (default:\n'
    '                        None)\n'
    '  --dataset_num_proc DATASET_NUM_PROC, --dataset-num-proc DATASET_NUM_PROC\n'
    '                        Number of processes to use for processing the dataset. (default: None)\n'
    '  --eos_token EOS_TOKEN, --eos-token EOS_TOKEN\n'
    '                        Token used to indicate the end of a turn or sequence. If `None`, it defaults\n'
    '                        to `processing_class.eos_token`. (default: None)\n'
    '  --max_length MAX_LENGTH, --max-length MAX_LENGTH\n'
    '                        Maximum length of the tokenized sequence. Sequences longer than `max_length`\n'
    '                        are truncated from the left or right depending on the `truncation_mode`. If\n'
    '                        `None`, no truncation is applied. When packing is enabled, this value sets\n'
    '                        the sequence length. (default: 512)\n'
    '  --truncation_mode {keep_end,keep_start}, --truncation-mode {keep_end,keep_start}\n'
    '                        Truncation mode to use when the sequence exceeds `max_length`. The only\n'
    "                        supported value is `'keep_start'`. The `'keep_end'` value is deprecated and\n"
    '                        will be removed in v2.0.0. (default: keep_start)\n'
    '  --shuffle_dataset [SHUFFLE_DATASET], --shuffle-dataset [SHUFFLE_DATASET]\n'
    '                        Whether to shuffle the dataset. (default: False)\n'
    '  --packing [PACKING]   Whether to group multiple sequences into fixed-length blocks to improve\n'
    '                        computational efficiency and reduce padding. Uses `max_length` to define\n'
    '                        sequence length. (default: False)\n'
    '  --packing_strategy {bfd,bfd_split,wrapped}, --packing-strategy {bfd,bfd_split,wrapped}\n'
    "                        Strategy for packing sequences. Can be `'bfd'` (best-fit decreasing,\n"
    "                        truncates overflow), `'bfd_split'` (best-fit decreasing, splits overflow\n"
    "                        sequences), or `'wrapped'` (aggressive, cuts mid-sequence). (default: bfd)\n"
    '  --padding_free [PADDING_FREE], --padding-free [PADDING_FREE]\n'
    '                        Whether to perform forward passes without padding by flattening all\n'
    '                        sequences in the batch into a single continuous sequence. This reduces\n'
    '                        memory usage by eliminating padding overhead. Currently, this is only\n'
    '                        supported with the FlashAttention 2 or 3, which can efficiently handle the\n'
    "                        flattened batch structure. When packing is enabled with strategy `'bfd'`,\n"
    '                        padding-free is enabled, regardless of the value of this parameter.\n'
    '                        (default: False)\n'
    '  --pad_to_multiple_of PAD_TO_MULTIPLE_OF, --pad-to-multiple-of PAD_TO_MULTIPLE_OF\n'
    "                        If set, the sequences will be padded to a multiple of this value. `'auto'`\n"
    '                        pads to a multiple of 128 on Neuron (AWS Trainium), which compiles once per\n'
    '                        input shape, and does not pad elsewhere. (default: auto)\n'
    '  --eval_packing EVAL_PACKING, --eval-packing EVAL_PACKING\n'
    '                        Whether to pack the eval dataset. If `None`, uses the same value as\n'
    '                        `packing`. (default: None)\n'
    '  --completion_only_loss COMPLETION_ONLY_LOSS, --completion-only-loss COMPLETION_ONLY_LOSS\n'
    '                        Whether to compute loss only on the completion part of the sequence. If set\n'
    '                        to `True`, loss is computed only on the completion, which is supported only\n'
    '                        for prompt-completion datasets. If `False`, loss is computed on the entire\n'
    '                        sequence. If `None` (default), the behavior depends on the dataset: loss is\n'
    '                        computed on the completion for prompt-completion datasets, and on the full\n'
    '                        sequence for language modeling datasets. (default: None)\n'
    '  --assistant_only_loss [ASSISTANT_ONLY_LOSS], --assistant-only-loss [ASSISTANT_ONLY_LOSS]\n'
    '                        Whether to compute loss only on the assistant part of the sequence. If set\n'
    '                        to `True`, loss is computed only on the assistant responses, which is\n'
    '                        supported only for conversational datasets. If `False`, loss is computed on\n'
    '                        the entire sequence. (default: False)\n'
    '  --loss_type {nll,dft,cadft}, --loss-type {nll,dft,cadft}\n'
    "                        Loss: 'nll' (SFT), 'dft' (Dynamic Fine-Tuning) or 'cadft' (DFT with\n"
    '                        compatibility-aware sample weights). (default: cadft)\n'
    '  --activation_offloading [ACTIVATION_OFFLOADING], --activation-offloading [ACTIVATION_OFFLOADING]\n'
    '                        Whether to offload the activations to the CPU. (default: False)\n'
    '  --pad_token PAD_TOKEN, --pad-token PAD_TOKEN\n'
    '                        Deprecated. Set `tokenizer.pad_token` directly and pass it as\n'
    '                        `processing_class` to the trainer instead. (default: None)\n'
    '  --cadft_normalization {zscore,ema,batch}, --cadft-normalization {zscore,ema,batch}\n'
    "                        The CADFT estimator. 'zscore' (default, the paper's): u = the\n"
    "                        demonstration's length-normalised NLL, z-scored over the optimizer step's\n"
    "                        global batch, weight exp(-beta * max(0, z)) in (0, 1]. The project's earlier\n"
    "                        estimator: 'ema' weights clip(c**beta / m, cadft_w_min, cadft_w_max), c =\n"
    "                        exp(-u), m a running mean of c**beta; 'batch' also rescales each step's\n"
    '                        gradient so that sum_i w_i M_i = sum_i M_i over the global batch (M_i = the\n'
    "                        sample's base-loss mass). (default: zscore)\n"
    '  --cadft_beta CADFT_BETA, --cadft-beta CADFT_BETA\n'
    '                        How strongly compatibility modulates the sample weight (>= 0; 0 gives DFT\n'
    "                        exactly). 'zscore': w = exp(-beta * max(0, z)); 'ema'/'batch': the exponent\n"
    "                        in c**beta / m. Default 1, the paper's. (default: 1.0)\n"
    '  --cadft_token_power CADFT_TOKEN_POWER, --cadft-token-power CADFT_TOKEN_POWER\n'
    '                        alpha in [0, 1]: the token loss is -sg(p)**alpha * log p. 1 (default) is\n'
    "                        DFT's token loss; 0 the plain NLL (CADFT with beta=0 is then SFT). The\n"
    "                        earlier estimator's default was 0.5. (default: 1.0)\n"
    '  --cadft_eps CADFT_EPS, --cadft-eps CADFT_EPS\n'
    "                        'zscore' only: eps in z = (u - mean) / (std + eps) (> 0; default 1e-6, the\n"
    "                        paper's). (default: None)\n"
    '  --cadft_scope {step,micro_batch}, --cadft-scope {step,micro_batch}\n'
    "                        'zscore' only: the rows z is computed over. 'step' (default): the whole\n"
    "                        optimizer step's global batch, exact whatever the split (a no-grad pre-pass\n"
    "                        over the step's micro-batches when gradient_accumulation_steps > 1).\n"
    "                        'micro_batch': each global micro-batch alone, no pre-pass; the update then\n"
    '                        depends on how the step is split into micro-batches. (default: None)\n'
    '  --cadft_w_min CADFT_W_MIN, --cadft-w-min CADFT_W_MIN\n'
    "                        'ema'/'batch' only: floor of the sample weight (default 0.1): no\n"
    '                        demonstration is dropped. (default: None)\n'
    '  --cadft_w_max CADFT_W_MAX, --cadft-w-max CADFT_W_MAX\n'
    "                        'ema'/'batch' only: ceiling of the sample weight (>= cadft_w_min; default\n"
    '                        3). 1 makes the earlier estimator suppress-only. (default: None)\n'
    '  --cadft_ema_decay CADFT_EMA_DECAY, --cadft-ema-decay CADFT_EMA_DECAY\n'
    "                        'ema'/'batch' only: decay of the running normaliser m, an EMA over optimizer\n"
    '                        steps of the global-batch mean of c**beta (default 0.9; 0 uses the current\n'
    "                        batch's mean alone). (default: None)\n"
    '  --cadft_calibration_samples CADFT_CALIBRATION_SAMPLES, --cadft-calibration-samples CADFT_CALIBRATION_SAMPLES\n'
    "                        'ema'/'batch' only: training samples scored in inference mode before the\n"
    '                        first step to initialise m (>= 1, capped at the dataset size; default 64).\n'
    '                        (default: None)\n'
    '  --rewrite [REWRITE]   Enable delayed, low-frequency, compatibility-guided rewriting of\n'
    "                        persistently incompatible demonstrations (needs loss_type='cadft'). By\n"
    "                        default the paper's procedure: after 3000 steps, every 1000, the samples\n"
    '                        (0.005 of the set) with the highest moving-average NLL, each replaced with\n'
    "                        probability 0.5 by the policy's own sample for the prompt alone, unverified.\n"
    '                        (default: False)\n'
    '  --rewrite_preset {paper,verified}, --rewrite-preset {paper,verified}\n'
    "                        'paper' (prompt alone, no verifier, no gain gate, replacement probability\n"
    "                        0.5, one candidate) or 'verified' (reference in the prompt, math verifier,\n"
    '                        gain gate, probability 1, two candidates). Sets rewrite_reference_in_prompt,\n'
    '                        rewrite_verifier, rewrite_gain_gate, rewrite_replace_prob and\n'
    '                        rewrite_num_candidates where they are not given. (default: paper)\n'
    '  --rewrite_start_step REWRITE_START_STEP, --rewrite-start-step REWRITE_START_STEP\n'
    "                        Warm-up: optimizer steps before the first round (default 3000, the paper's\n"
    '                        T_warm, unless rewrite_start_fraction is given). (default: None)\n'
    '  --rewrite_start_fraction REWRITE_START_FRACTION, --rewrite-start-fraction REWRITE_START_FRACTION\n'
    '                        Alternative to rewrite_start_step: a fraction of max steps, in (0, 1].\n'
    '                        (default: None)\n'
    '  --rewrite_interval_steps REWRITE_INTERVAL_STEPS, --rewrite-interval-steps REWRITE_INTERVAL_STEPS\n'
    "                        Optimizer steps between rounds (default 1000, the paper's K, unless\n"
    '                        rewrite_interval_fraction is given). (default: None)\n'
    '  --rewrite_interval_fraction REWRITE_INTERVAL_FRACTION, --rewrite-interval-fraction REWRITE_INTERVAL_FRACTION\n'
    '                        Alternative to rewrite_interval_steps: a fraction of max steps, in (0, 1].\n'
    '                        (default: None)\n'
    '  --rewrite_selection {top_u,flagged}, --rewrite-selection {top_u,flagged}\n'
    "                        'top_u' (the paper's: the highest moving-average u, the length-normalised\n"
    "                        NLL, among samples seen on at least rewrite_min_visits visits) or 'flagged'\n"
    '                        (weight below rewrite_flag_threshold on rewrite_persistence consecutive\n'
    '                        visits, least compatible first). (default: top_u)\n'
    '  --rewrite_min_visits REWRITE_MIN_VISITS, --rewrite-min-visits REWRITE_MIN_VISITS\n'
    '                        top_u selection: visits (since its last rewrite attempt) a sample needs to\n'
    '                        be selected. (default: 2)\n'
    '  --rewrite_persistence REWRITE_PERSISTENCE, --rewrite-persistence REWRITE_PERSISTENCE\n'
    '                        flagged selection: consecutive flagged visits that make a sample\n'
    '                        persistently incompatible. (default: 2)\n'
    '  --rewrite_flag_threshold REWRITE_FLAG_THRESHOLD, --rewrite-flag-threshold REWRITE_FLAG_THRESHOLD\n'
    '                        flagged selection: a visit is flagged when the weight before clipping is\n'
    '                        below this. (default: 0.5)\n'
    '  --rewrite_flag_quantile REWRITE_FLAG_QUANTILE, --rewrite-flag-quantile REWRITE_FLAG_QUANTILE\n'
    '                        flagged selection: also flag a visit whose compatibility is in this bottom\n'
    '                        quantile of all tracked samples. (default: None)\n'
    '  --rewrite_budget REWRITE_BUDGET, --rewrite-budget REWRITE_BUDGET\n'
    '                        Samples per round: below 1, a fraction of the training set (at least one); 1\n'
    "                        or more, a count. Default 0.005, the paper's half a percent. (default:\n"
    '                        0.005)\n'
    '  --rewrite_replace_prob REWRITE_REPLACE_PROB, --rewrite-replace-prob REWRITE_REPLACE_PROB\n'
    '                        Probability that a selected target is replaced (a seeded draw per sample and\n'
    '                        round, recorded in the provenance); default from the preset: 0.5 (paper), 1\n'
    '                        (verified). (default: None)\n'
    '  --rewrite_seed REWRITE_SEED, --rewrite-seed REWRITE_SEED\n'
    '                        Seed of the replacement draws (default: seed). (default: None)\n'
    '  --rewrite_reference_in_prompt REWRITE_REFERENCE_IN_PROMPT, --rewrite-reference-in-prompt REWRITE_REFERENCE_IN_PROMPT\n'
    '                        Show the original demonstration to the generator as a reference\n'
    '                        (rewrite_template); off: the prompt alone. Default from the preset: off\n'
    '                        (paper), on (verified). (default: None)\n'
    '  --rewrite_gain_gate REWRITE_GAIN_GATE, --rewrite-gain-gate REWRITE_GAIN_GATE\n'
    '                        Replace only if c(candidate) >= c(original) + rewrite_min_gain. Default from\n'
    '                        the preset: off (paper), on (verified). (default: None)\n'
    '  --rewrite_num_candidates REWRITE_NUM_CANDIDATES, --rewrite-num-candidates REWRITE_NUM_CANDIDATES\n'
    '                        Candidates generated per selected sample (the most compatible that passes\n'
    '                        the gates wins). Default from the preset: 1 (paper), 2 (verified). (default:\n'
    '                        None)\n'
    '  --rewrite_min_gain REWRITE_MIN_GAIN, --rewrite-min-gain REWRITE_MIN_GAIN\n'
    "                        The gain gate's margin: a candidate needs c(candidate) >= c(original) +\n"
    '                        this. (default: 0.0)\n'
    '  --rewrite_max_new_tokens REWRITE_MAX_NEW_TOKENS, --rewrite-max-new-tokens REWRITE_MAX_NEW_TOKENS\n'
    '                        Generation length limit for rewrites. (default: 256)\n'
    '  --rewrite_temperature REWRITE_TEMPERATURE, --rewrite-temperature REWRITE_TEMPERATURE\n'
    '                        Sampling temperature for rewrites. (default: 0.7)\n'
    '  --rewrite_top_p REWRITE_TOP_P, --rewrite-top-p REWRITE_TOP_P\n'
    "                        Nucleus sampling for rewrites (the paper's 0.9). (default: 0.9)\n"
    '  --rewrite_max_reply_chars REWRITE_MAX_REPLY_CHARS, --rewrite-max-reply-chars REWRITE_MAX_REPLY_CHARS\n'
    '                        A generator reply longer than this many characters is rejected unverified\n'
    "                        ('reply_too_large') and stored cut short (default: 32 x\n"
    '                        rewrite_max_new_tokens). (default: None)\n'
    '  --rewrite_generator REWRITE_GENERATOR, --rewrite-generator REWRITE_GENERATOR\n'
    "                        'policy' (the model being trained), 'local:<path-or-name>',\n"
    "                        'openai:<model>@<base_url>' (API key from $OPENAI_API_KEY) or 'vllm:<path-\n"
    "                        or-name>'. (default: policy)\n"
    '  --rewrite_generator_kwargs REWRITE_GENERATOR_KWARGS, --rewrite-generator-kwargs REWRITE_GENERATOR_KWARGS\n'
    '                        Keyword arguments for the generator, as a dict or a JSON string, e.g.\n'
    '                        \'{"timeout_s": 30, "max_retries": 5, "concurrency": 8}\' for an openai:\n'
    '                        generator. (default: None)\n'
    '  --rewrite_verifier REWRITE_VERIFIER, --rewrite-verifier REWRITE_VERIFIER\n'
    "                        'math' (math-verify final-answer equivalence), 'exact' (normalised final\n"
    "                        answer), 'none' (unverified) or 'module:function'. Default from the preset:\n"
    '                        none (paper), math (verified). (default: None)\n'
    '  --rewrite_answer_column REWRITE_ANSWER_COLUMN, --rewrite-answer-column REWRITE_ANSWER_COLUMN\n'
    "                        Column holding each sample's reference answer for the verifier and for\n"
    "                        measuring whether replacements are right (e.g. 'answer'); default: the final\n"
    '                        answer of the original. (default: None)\n'
    '  --rewrite_template REWRITE_TEMPLATE, --rewrite-template REWRITE_TEMPLATE\n'
    '                        Rewrite prompt template with {question} and {reference} (default: built in;\n'
    '                        needs rewrite_reference_in_prompt). (default: None)\n'
    '  --rewrite_tracker_decay REWRITE_TRACKER_DECAY, --rewrite-tracker-decay REWRITE_TRACKER_DECAY\n'
    "                        EMA decay of each sample's tracked compatibility (and u) over its visits.\n"
    '                        (default: 0.5)\n'
    '  --rewrite_round_timeout REWRITE_ROUND_TIMEOUT, --rewrite-round-timeout REWRITE_ROUND_TIMEOUT\n'
    "                        Seconds the other processes wait for the main process's rewrite generation\n"
    '                        in a round (a separate gloo group with this timeout, not ddp_timeout;\n'
    '                        several processes only). (default: 21600.0)\n'
    '  --model_name_or_path MODEL_NAME_OR_PATH, --model-name-or-path MODEL_NAME_OR_PATH\n'
    '                        Model checkpoint for weights initialization. (default: embedded)\n'
    '  --model_revision MODEL_REVISION, --model-revision MODEL_REVISION\n'
    '                        Specific model version to use. It can be a branch name, a tag name, or a\n'
    '                        commit id. (default: main)\n'
    '  --dtype {auto,bfloat16,float16,float32}\n'
    '                        Override the default `torch.dtype` and load the model under this dtype. It\n'
    "                        defaults to `'float32'`. (default: float32)\n"
    '  --attn_implementation ATTN_IMPLEMENTATION, --attn-implementation ATTN_IMPLEMENTATION\n'
    '                        Which attention implementation to use. You can run\n'
    '                        `--attn_implementation=flash_attention_2`, in which case you must install\n'
    '                        this manually by running `pip install flash-attn --no-build-isolation`.\n'
    '                        (default: None)\n'
    '  --use_peft [USE_PEFT], --use-peft [USE_PEFT]\n'
    '                        Whether to use PEFT for training. (default: True)\n'
    '  --lora_r LORA_R, --lora-r LORA_R\n'
    '                        LoRA R value. (default: 16)\n'
    '  --lora_alpha LORA_ALPHA, --lora-alpha LORA_ALPHA\n'
    '                        LoRA alpha. (default: 32)\n'
    '  --lora_dropout LORA_DROPOUT, --lora-dropout LORA_DROPOUT\n'
    '                        LoRA dropout. (default: 0.05)\n'
    '  --lora_target_modules LORA_TARGET_MODULES [LORA_TARGET_MODULES ...], --lora-target-modules LORA_TARGET_MODULES [LORA_TARGET_MODULES ...]\n'
    '                        LoRA target modules. (default: None)\n'
    '  --lora_target_parameters LORA_TARGET_PARAMETERS [LORA_TARGET_PARAMETERS ...], --lora-target-parameters LORA_TARGET_PARAMETERS [LORA_TARGET_PARAMETERS ...]\n'
    '                        List of target parameters for LoRA. (default: None)\n'
    '  --lora_modules_to_save LORA_MODULES_TO_SAVE [LORA_MODULES_TO_SAVE ...], --lora-modules-to-save LORA_MODULES_TO_SAVE [LORA_MODULES_TO_SAVE ...]\n'
    '                        Model layers to unfreeze & train. (default: None)\n'
    '  --lora_task_type LORA_TASK_TYPE, --lora-task-type LORA_TASK_TYPE\n'
    "                        Task type to pass for LoRA (use 'SEQ_CLS' for reward modeling). (default:\n"
    '                        CAUSAL_LM)\n'
    '  --use_rslora [USE_RSLORA], --use-rslora [USE_RSLORA]\n'
    '                        Whether to use Rank-Stabilized LoRA, which sets the adapter scaling factor\n'
    '                        to `lora_alpha/√r`, instead of the original default value of `lora_alpha/r`.\n'
    '                        (default: False)\n'
    '  --use_dora [USE_DORA], --use-dora [USE_DORA]\n'
    '                        Enable Weight-Decomposed Low-Rank Adaptation (DoRA). This technique\n'
    '                        decomposes the updates of the weights into two parts, magnitude and\n'
    '                        direction. Direction is handled by normal LoRA, whereas the magnitude is\n'
    '                        handled by a separate learnable parameter. This can improve the performance\n'
    '                        of LoRA, especially at low ranks. Right now, DoRA only supports linear and\n'
    '                        Conv2D layers. DoRA introduces a bigger overhead than pure LoRA, so it is\n'
    '                        recommended to merge weights for inference. (default: False)\n'
    '  --load_in_8bit [LOAD_IN_8BIT], --load-in-8bit [LOAD_IN_8BIT]\n'
    '                        Whether to use 8 bit precision for the base model. Works only with LoRA.\n'
    '                        (default: False)\n'
    '  --load_in_4bit [LOAD_IN_4BIT], --load-in-4bit [LOAD_IN_4BIT]\n'
    '                        Whether to use 4 bit precision for the base model. Works only with LoRA.\n'
    '                        (default: False)\n'
    '  --bnb_4bit_quant_type {fp4,nf4}, --bnb-4bit-quant-type {fp4,nf4}\n'
    '                        Quantization type. (default: nf4)\n'
    '  --use_bnb_nested_quant [USE_BNB_NESTED_QUANT], --use-bnb-nested-quant [USE_BNB_NESTED_QUANT]\n'
    '                        Whether to use nested quantization. (default: False)\n'
    '  --bnb_4bit_quant_storage BNB_4BIT_QUANT_STORAGE, --bnb-4bit-quant-storage BNB_4BIT_QUANT_STORAGE\n'
    '                        Quantization storage dtype (default: None)\n'
    '\n'
    '--config FILE.yaml takes flag values from a YAML file; flags given on the command line override it.\n'
)

# (option strings, dest, nargs, type, choices, const) of every flag
FLAGS = (
    (('--dataset_path', '--dataset-path'), 'dataset_path', None, 'str', None, None),
    (('--dataset_name', '--dataset-name'), 'dataset_name', None, 'str', None, None),
    (('--dataset_config', '--dataset-config'), 'dataset_config', None, 'str', None, None),
    (('--dataset_train_split', '--dataset-train-split'), 'dataset_train_split', None, 'str', None, None),
    (('--max_train_samples', '--max-train-samples'), 'max_train_samples', None, 'str', None, None),
    (('--tag_column', '--tag-column'), 'tag_column', None, 'str', None, None),
    (('--embedded_num_demos', '--embedded-num-demos'), 'embedded_num_demos', None, 'int', None, None),
    (('--embedded_frac_foreign', '--embedded-frac-foreign'), 'embedded_frac_foreign', None, 'float', None, None),
    (('--embedded_frac_wrong', '--embedded-frac-wrong'), 'embedded_frac_wrong', None, 'float', None, None),
    (('--embedded_seed', '--embedded-seed'), 'embedded_seed', None, 'int', None, None),
    (('--summary',), 'summary', '?', 'bool', None, True),
    (('--no_summary', '--no-summary'), 'summary', 0, None, None, False),
    (('--output_dir', '--output-dir'), 'output_dir', None, 'str', None, None),
    (('--per_device_train_batch_size', '--per-device-train-batch-size'), 'per_device_train_batch_size', None, 'int', None, None),
    (('--num_train_epochs', '--num-train-epochs'), 'num_train_epochs', None, 'float', None, None),
    (('--max_steps', '--max-steps'), 'max_steps', None, 'int', None, None),
    (('--learning_rate', '--learning-rate'), 'learning_rate', None, 'float', None, None),
    (('--lr_scheduler_type', '--lr-scheduler-type'), 'lr_scheduler_type', None, 'str', ('linear', 'cosine', 'cosine_with_restarts', 'polynomial', 'constant', 'constant_with_warmup', 'inverse_sqrt', 'reduce_lr_on_plateau', 'cosine_with_min_lr', 'cosine_warmup_with_min_lr', 'warmup_stable_decay', 'greedy'), None),
    (('--lr_scheduler_kwargs', '--lr-scheduler-kwargs'), 'lr_scheduler_kwargs', None, 'str', None, None),
    (('--warmup_steps', '--warmup-steps'), 'warmup_steps', None, 'float', None, None),
    (('--optim',), 'optim', None, 'str', ('adamw_torch', 'adamw_torch_fused', 'adamw_torch_xla', 'adamw_torch_npu_fused', 'adafactor', 'adamw_anyprecision', 'adamw_torch_4bit', 'adamw_torch_8bit', 'ademamix', 'sgd', 'adagrad', 'adamw_bnb_8bit', 'adamw_8bit', 'ademamix_8bit', 'lion_8bit', 'lion_32bit', 'paged_adamw_32bit', 'paged_adamw_8bit', 'paged_ademamix_32bit', 'paged_ademamix_8bit', 'paged_lion_32bit', 'paged_lion_8bit', 'rmsprop', 'rmsprop_bnb', 'rmsprop_bnb_8bit', 'rmsprop_bnb_32bit', 'galore_adamw', 'galore_adamw_8bit', 'galore_adafactor', 'galore_adamw_layerwise', 'galore_adamw_8bit_layerwise', 'galore_adafactor_layerwise', 'lomo', 'adalomo', 'grokadamw', 'schedule_free_radam', 'schedule_free_adamw', 'schedule_free_sgd', 'apollo_adamw', 'apollo_adamw_layerwise', 'stable_adamw'), None),
    (('--optim_args', '--optim-args'), 'optim_args', None, 'str', None, None),
    (('--weight_decay', '--weight-decay'), 'weight_decay', None, 'float', None, None),
    (('--adam_beta1', '--adam-beta1'), 'adam_beta1', None, 'float', None, None),
    (('--adam_beta2', '--adam-beta2'), 'adam_beta2', None, 'float', None, None),
    (('--adam_epsilon', '--adam-epsilon'), 'adam_epsilon', None, 'float', None, None),
    (('--optim_target_modules', '--optim-target-modules'), 'optim_target_modules', None, 'str', None, None),
    (('--gradient_accumulation_steps', '--gradient-accumulation-steps'), 'gradient_accumulation_steps', None, 'int', None, None),
    (('--average_tokens_across_devices', '--average-tokens-across-devices'), 'average_tokens_across_devices', '?', 'bool', None, True),
    (('--no_average_tokens_across_devices', '--no-average-tokens-across-devices'), 'average_tokens_across_devices', 0, None, None, False),
    (('--max_grad_norm', '--max-grad-norm'), 'max_grad_norm', None, 'float', None, None),
    (('--label_smoothing_factor', '--label-smoothing-factor'), 'label_smoothing_factor', None, 'float', None, None),
    (('--bf16',), 'bf16', None, 'bool', None, None),
    (('--fp16',), 'fp16', '?', 'bool', None, True),
    (('--bf16_full_eval', '--bf16-full-eval'), 'bf16_full_eval', '?', 'bool', None, True),
    (('--fp16_full_eval', '--fp16-full-eval'), 'fp16_full_eval', '?', 'bool', None, True),
    (('--tf32',), 'tf32', None, 'bool', None, None),
    (('--activation_checkpointing', '--activation-checkpointing'), 'activation_checkpointing', '?', 'bool', None, True),
    (('--activation_checkpointing_kwargs', '--activation-checkpointing-kwargs'), 'activation_checkpointing_kwargs', None, 'str', None, None),
    (('--gradient_checkpointing', '--gradient-checkpointing'), 'gradient_checkpointing', '?', 'bool', None, True),
    (('--no_gradient_checkpointing', '--no-gradient-checkpointing'), 'gradient_checkpointing', 0, None, None, False),
    (('--gradient_checkpointing_kwargs', '--gradient-checkpointing-kwargs'), 'gradient_checkpointing_kwargs', None, 'str', None, None),
    (('--torch_compile', '--torch-compile'), 'torch_compile', '?', 'bool', None, True),
    (('--torch_compile_backend', '--torch-compile-backend'), 'torch_compile_backend', None, 'str', None, None),
    (('--torch_compile_mode', '--torch-compile-mode'), 'torch_compile_mode', None, 'str', None, None),
    (('--use_liger_kernel', '--use-liger-kernel'), 'use_liger_kernel', '?', 'bool', None, True),
    (('--liger_kernel_config', '--liger-kernel-config'), 'liger_kernel_config', None, 'str', None, None),
    (('--use_cache', '--use-cache'), 'use_cache', '?', 'bool', None, True),
    (('--neftune_noise_alpha', '--neftune-noise-alpha'), 'neftune_noise_alpha', None, 'str', None, None),
    (('--torch_empty_cache_steps', '--torch-empty-cache-steps'), 'torch_empty_cache_steps', None, 'str', None, None),
    (('--auto_find_batch_size', '--auto-find-batch-size'), 'auto_find_batch_size', '?', 'bool', None, True),
    (('--logging_strategy', '--logging-strategy'), 'logging_strategy', None, 'str', ('no', 'steps', 'epoch'), None),
    (('--logging_steps', '--logging-steps'), 'logging_steps', None, 'float', None, None),
    (('--logging_first_step', '--logging-first-step'), 'logging_first_step', '?', 'bool', None, True),
    (('--log_on_each_node', '--log-on-each-node'), 'log_on_each_node', '?', 'bool', None, True),
    (('--no_log_on_each_node', '--no-log-on-each-node'), 'log_on_each_node', 0, None, None, False),
    (('--logging_nan_inf_filter', '--logging-nan-inf-filter'), 'logging_nan_inf_filter', '?', 'bool', None, True),
    (('--no_logging_nan_inf_filter', '--no-logging-nan-inf-filter'), 'logging_nan_inf_filter', 0, None, None, False),
    (('--include_num_input_tokens_seen', '--include-num-input-tokens-seen'), 'include_num_input_tokens_seen', '?', 'bool', None, True),
    (('--log_level', '--log-level'), 'log_level', None, 'str', ('detail', 'debug', 'info', 'warning', 'error', 'critical', 'passive'), None),
    (('--log_level_replica', '--log-level-replica'), 'log_level_replica', None, 'str', ('detail', 'debug', 'info', 'warning', 'error', 'critical', 'passive'), None),
    (('--disable_tqdm', '--disable-tqdm'), 'disable_tqdm', None, 'bool', None, None),
    (('--report_to', '--report-to'), 'report_to', None, 'str', None, None),
    (('--run_name', '--run-name'), 'run_name', None, 'str', None, None),
    (('--project',), 'project', None, 'str', None, None),
    (('--trackio_space_id', '--trackio-space-id'), 'trackio_space_id', None, 'str', None, None),
    (('--trackio_bucket_id', '--trackio-bucket-id'), 'trackio_bucket_id', None, 'str', None, None),
    (('--trackio_static_space_id', '--trackio-static-space-id'), 'trackio_static_space_id', None, 'str', None, None),
    (('--eval_strategy', '--eval-strategy'), 'eval_strategy', None, 'str', ('no', 'steps', 'epoch'), None),
    (('--eval_steps', '--eval-steps'), 'eval_steps', None, 'str', None, None),
    (('--eval_delay', '--eval-delay'), 'eval_delay', None, 'float', None, None),
    (('--per_device_eval_batch_size', '--per-device-eval-batch-size'), 'per_device_eval_batch_size', None, 'int', None, None),
    (('--prediction_loss_only', '--prediction-loss-only'), 'prediction_loss_only', '?', 'bool', None, True),
    (('--eval_on_start', '--eval-on-start'), 'eval_on_start', '?', 'bool', None, True),
    (('--eval_do_concat_batches', '--eval-do-concat-batches'), 'eval_do_concat_batches', '?', 'bool', None, True),
    (('--no_eval_do_concat_batches', '--no-eval-do-concat-batches'), 'eval_do_concat_batches', 0, None, None, False),
    (('--eval_use_gather_object', '--eval-use-gather-object'), 'eval_use_gather_object', '?', 'bool', None, True),
    (('--eval_accumulation_steps', '--eval-accumulation-steps'), 'eval_accumulation_steps', None, 'str', None, None),
    (('--include_for_metrics', '--include-for-metrics'), 'include_for_metrics', '+', 'str', None, None),
    (('--batch_eval_metrics', '--batch-eval-metrics'), 'batch_eval_metrics', '?', 'bool', None, True),
    (('--save_only_model', '--save-only-model'), 'save_only_model', '?', 'bool', None, True),
    (('--save_strategy', '--save-strategy'), 'save_strategy', None, 'str', ('no', 'steps', 'epoch', 'best'), None),
    (('--save_steps', '--save-steps'), 'save_steps', None, 'float', None, None),
    (('--save_on_each_node', '--save-on-each-node'), 'save_on_each_node', '?', 'bool', None, True),
    (('--save_total_limit', '--save-total-limit'), 'save_total_limit', None, 'str', None, None),
    (('--enable_jit_checkpoint', '--enable-jit-checkpoint'), 'enable_jit_checkpoint', '?', 'bool', None, True),
    (('--push_to_hub', '--push-to-hub'), 'push_to_hub', '?', 'bool', None, True),
    (('--hub_token', '--hub-token'), 'hub_token', None, 'str', None, None),
    (('--hub_private_repo', '--hub-private-repo'), 'hub_private_repo', None, 'bool', None, None),
    (('--hub_model_id', '--hub-model-id'), 'hub_model_id', None, 'str', None, None),
    (('--hub_strategy', '--hub-strategy'), 'hub_strategy', None, 'str', ('end', 'every_save', 'checkpoint', 'all_checkpoints'), None),
    (('--hub_always_push', '--hub-always-push'), 'hub_always_push', '?', 'bool', None, True),
    (('--hub_revision', '--hub-revision'), 'hub_revision', None, 'str', None, None),
    (('--load_best_model_at_end', '--load-best-model-at-end'), 'load_best_model_at_end', '?', 'bool', None, True),
    (('--metric_for_best_model', '--metric-for-best-model'), 'metric_for_best_model', None, 'str', None, None),
    (('--greater_is_better', '--greater-is-better'), 'greater_is_better', None, 'bool', None, None),
    (('--ignore_data_skip', '--ignore-data-skip'), 'ignore_data_skip', '?', 'bool', None, True),
    (('--restore_callback_states_from_checkpoint', '--restore-callback-states-from-checkpoint'), 'restore_callback_states_from_checkpoint', '?', 'bool', None, True),
    (('--full_determinism', '--full-determinism'), 'full_determinism', '?', 'bool', None, True),
    (('--seed',), 'seed', None, 'int', None, None),
    (('--data_seed', '--data-seed'), 'data_seed', None, 'str', None, None),
    (('--use_cpu', '--use-cpu'), 'use_cpu', '?', 'bool', None, True),
    (('--accelerator_config', '--accelerator-config'), 'accelerator_config', None, 'str', None, None),
    (('--parallelism_config', '--parallelism-config'), 'parallelism_config', None, 'str', None, None),
    (('--dataloader_drop_last', '--dataloader-drop-last'), 'dataloader_drop_last', '?', 'bool', None, True),
    (('--dataloader_num_workers', '--dataloader-num-workers'), 'dataloader_num_workers', None, 'int', None, None),
    (('--dataloader_pin_memory', '--dataloader-pin-memory'), 'dataloader_pin_memory', '?', 'bool', None, True),
    (('--no_dataloader_pin_memory', '--no-dataloader-pin-memory'), 'dataloader_pin_memory', 0, None, None, False),
    (('--dataloader_persistent_workers', '--dataloader-persistent-workers'), 'dataloader_persistent_workers', '?', 'bool', None, True),
    (('--dataloader_prefetch_factor', '--dataloader-prefetch-factor'), 'dataloader_prefetch_factor', None, 'str', None, None),
    (('--dataloader_multiprocessing_context', '--dataloader-multiprocessing-context'), 'dataloader_multiprocessing_context', None, 'str', ('fork', 'spawn', 'forkserver'), None),
    (('--dataloader_in_order', '--dataloader-in-order'), 'dataloader_in_order', '?', 'bool', None, True),
    (('--no_dataloader_in_order', '--no-dataloader-in-order'), 'dataloader_in_order', 0, None, None, False),
    (('--remove_unused_columns', '--remove-unused-columns'), 'remove_unused_columns', '?', 'bool', None, True),
    (('--no_remove_unused_columns', '--no-remove-unused-columns'), 'remove_unused_columns', 0, None, None, False),
    (('--label_names', '--label-names'), 'label_names', '+', 'str', None, None),
    (('--train_sampling_strategy', '--train-sampling-strategy'), 'train_sampling_strategy', None, 'str', ('random', 'sequential', 'group_by_length', 'batch_rebalance'), None),
    (('--length_column_name', '--length-column-name'), 'length_column_name', None, 'str', None, None),
    (('--ddp_find_unused_parameters', '--ddp-find-unused-parameters'), 'ddp_find_unused_parameters', None, 'bool', None, None),
    (('--ddp_bucket_cap_mb', '--ddp-bucket-cap-mb'), 'ddp_bucket_cap_mb', None, 'str', None, None),
    (('--ddp_broadcast_buffers', '--ddp-broadcast-buffers'), 'ddp_broadcast_buffers', None, 'bool', None, None),
    (('--ddp_static_graph', '--ddp-static-graph'), 'ddp_static_graph', None, 'bool', None, None),
    (('--ddp_backend', '--ddp-backend'), 'ddp_backend', None, 'str', ('nccl', 'gloo', 'mpi', 'xccl', 'hccl', 'cncl', 'mccl'), None),
    (('--ddp_timeout', '--ddp-timeout'), 'ddp_timeout', None, 'int', None, None),
    (('--fsdp',), 'fsdp', '?', 'str', None, True),
    (('--fsdp_config', '--fsdp-config'), 'fsdp_config', None, 'str', None, None),
    (('--deepspeed',), 'deepspeed', None, 'str', None, None),
    (('--debug',), 'debug', '+', 'str', None, None),
    (('--skip_memory_metrics', '--skip-memory-metrics'), 'skip_memory_metrics', '?', 'bool', None, True),
    (('--no_skip_memory_metrics', '--no-skip-memory-metrics'), 'skip_memory_metrics', 0, None, None, False),
    (('--do_train', '--do-train'), 'do_train', '?', 'bool', None, True),
    (('--do_eval', '--do-eval'), 'do_eval', '?', 'bool', None, True),
    (('--do_predict', '--do-predict'), 'do_predict', '?', 'bool', None, True),
    (('--resume_from_checkpoint', '--resume-from-checkpoint'), 'resume_from_checkpoint', None, 'str', None, None),
    (('--local_rank', '--local-rank'), 'local_rank', None, 'int', None, None),
    (('--model_init_kwargs', '--model-init-kwargs'), 'model_init_kwargs', None, 'str', None, None),
    (('--trust_remote_code', '--trust-remote-code'), 'trust_remote_code', '?', 'bool', None, True),
    (('--router_aux_loss_coef', '--router-aux-loss-coef'), 'router_aux_loss_coef', None, 'str', None, None),
    (('--chat_template_path', '--chat-template-path'), 'chat_template_path', None, 'str', None, None),
    (('--dataset_text_field', '--dataset-text-field'), 'dataset_text_field', None, 'str', None, None),
    (('--dataset_kwargs', '--dataset-kwargs'), 'dataset_kwargs', None, 'str', None, None),
    (('--dataset_num_proc', '--dataset-num-proc'), 'dataset_num_proc', None, 'str', None, None),
    (('--eos_token', '--eos-token'), 'eos_token', None, 'str', None, None),
    (('--max_length', '--max-length'), 'max_length', None, 'str', None, None),
    (('--truncation_mode', '--truncation-mode'), 'truncation_mode', None, 'str', ('keep_end', 'keep_start'), None),
    (('--shuffle_dataset', '--shuffle-dataset'), 'shuffle_dataset', '?', 'bool', None, True),
    (('--packing',), 'packing', '?', 'bool', None, True),
    (('--packing_strategy', '--packing-strategy'), 'packing_strategy', None, 'str', ('bfd', 'bfd_split', 'wrapped'), None),
    (('--padding_free', '--padding-free'), 'padding_free', '?', 'bool', None, True),
    (('--pad_to_multiple_of', '--pad-to-multiple-of'), 'pad_to_multiple_of', None, 'str', None, None),
    (('--eval_packing', '--eval-packing'), 'eval_packing', None, 'bool', None, None),
    (('--completion_only_loss', '--completion-only-loss'), 'completion_only_loss', None, 'bool', None, None),
    (('--assistant_only_loss', '--assistant-only-loss'), 'assistant_only_loss', '?', 'bool', None, True),
    (('--loss_type', '--loss-type'), 'loss_type', None, 'str', ('nll', 'dft', 'cadft'), None),
    (('--activation_offloading', '--activation-offloading'), 'activation_offloading', '?', 'bool', None, True),
    (('--pad_token', '--pad-token'), 'pad_token', None, 'str', None, None),
    (('--cadft_normalization', '--cadft-normalization'), 'cadft_normalization', None, 'str', ('zscore', 'ema', 'batch'), None),
    (('--cadft_beta', '--cadft-beta'), 'cadft_beta', None, 'float', None, None),
    (('--cadft_token_power', '--cadft-token-power'), 'cadft_token_power', None, 'float', None, None),
    (('--cadft_eps', '--cadft-eps'), 'cadft_eps', None, 'str', None, None),
    (('--cadft_scope', '--cadft-scope'), 'cadft_scope', None, 'str', ('step', 'micro_batch'), None),
    (('--cadft_w_min', '--cadft-w-min'), 'cadft_w_min', None, 'str', None, None),
    (('--cadft_w_max', '--cadft-w-max'), 'cadft_w_max', None, 'str', None, None),
    (('--cadft_ema_decay', '--cadft-ema-decay'), 'cadft_ema_decay', None, 'str', None, None),
    (('--cadft_calibration_samples', '--cadft-calibration-samples'), 'cadft_calibration_samples', None, 'str', None, None),
    (('--rewrite',), 'rewrite', '?', 'bool', None, True),
    (('--rewrite_preset', '--rewrite-preset'), 'rewrite_preset', None, 'str', ('paper', 'verified'), None),
    (('--rewrite_start_step', '--rewrite-start-step'), 'rewrite_start_step', None, 'str', None, None),
    (('--rewrite_start_fraction', '--rewrite-start-fraction'), 'rewrite_start_fraction', None, 'str', None, None),
    (('--rewrite_interval_steps', '--rewrite-interval-steps'), 'rewrite_interval_steps', None, 'str', None, None),
    (('--rewrite_interval_fraction', '--rewrite-interval-fraction'), 'rewrite_interval_fraction', None, 'str', None, None),
    (('--rewrite_selection', '--rewrite-selection'), 'rewrite_selection', None, 'str', ('top_u', 'flagged'), None),
    (('--rewrite_min_visits', '--rewrite-min-visits'), 'rewrite_min_visits', None, 'int', None, None),
    (('--rewrite_persistence', '--rewrite-persistence'), 'rewrite_persistence', None, 'int', None, None),
    (('--rewrite_flag_threshold', '--rewrite-flag-threshold'), 'rewrite_flag_threshold', None, 'float', None, None),
    (('--rewrite_flag_quantile', '--rewrite-flag-quantile'), 'rewrite_flag_quantile', None, 'str', None, None),
    (('--rewrite_budget', '--rewrite-budget'), 'rewrite_budget', None, 'float', None, None),
    (('--rewrite_replace_prob', '--rewrite-replace-prob'), 'rewrite_replace_prob', None, 'str', None, None),
    (('--rewrite_seed', '--rewrite-seed'), 'rewrite_seed', None, 'str', None, None),
    (('--rewrite_reference_in_prompt', '--rewrite-reference-in-prompt'), 'rewrite_reference_in_prompt', None, 'bool', None, None),
    (('--rewrite_gain_gate', '--rewrite-gain-gate'), 'rewrite_gain_gate', None, 'bool', None, None),
    (('--rewrite_num_candidates', '--rewrite-num-candidates'), 'rewrite_num_candidates', None, 'str', None, None),
    (('--rewrite_min_gain', '--rewrite-min-gain'), 'rewrite_min_gain', None, 'float', None, None),
    (('--rewrite_max_new_tokens', '--rewrite-max-new-tokens'), 'rewrite_max_new_tokens', None, 'int', None, None),
    (('--rewrite_temperature', '--rewrite-temperature'), 'rewrite_temperature', None, 'float', None, None),
    (('--rewrite_top_p', '--rewrite-top-p'), 'rewrite_top_p', None, 'float', None, None),
    (('--rewrite_max_reply_chars', '--rewrite-max-reply-chars'), 'rewrite_max_reply_chars', None, 'str', None, None),
    (('--rewrite_generator', '--rewrite-generator'), 'rewrite_generator', None, 'str', None, None),
    (('--rewrite_generator_kwargs', '--rewrite-generator-kwargs'), 'rewrite_generator_kwargs', None, 'str', None, None),
    (('--rewrite_verifier', '--rewrite-verifier'), 'rewrite_verifier', None, 'str', None, None),
    (('--rewrite_answer_column', '--rewrite-answer-column'), 'rewrite_answer_column', None, 'str', None, None),
    (('--rewrite_template', '--rewrite-template'), 'rewrite_template', None, 'str', None, None),
    (('--rewrite_tracker_decay', '--rewrite-tracker-decay'), 'rewrite_tracker_decay', None, 'float', None, None),
    (('--rewrite_round_timeout', '--rewrite-round-timeout'), 'rewrite_round_timeout', None, 'float', None, None),
    (('--model_name_or_path', '--model-name-or-path'), 'model_name_or_path', None, 'str', None, None),
    (('--model_revision', '--model-revision'), 'model_revision', None, 'str', None, None),
    (('--dtype',), 'dtype', None, 'str', ('auto', 'bfloat16', 'float16', 'float32'), None),
    (('--attn_implementation', '--attn-implementation'), 'attn_implementation', None, 'str', None, None),
    (('--use_peft', '--use-peft'), 'use_peft', '?', 'bool', None, True),
    (('--lora_r', '--lora-r'), 'lora_r', None, 'int', None, None),
    (('--lora_alpha', '--lora-alpha'), 'lora_alpha', None, 'int', None, None),
    (('--lora_dropout', '--lora-dropout'), 'lora_dropout', None, 'float', None, None),
    (('--lora_target_modules', '--lora-target-modules'), 'lora_target_modules', '+', 'str', None, None),
    (('--lora_target_parameters', '--lora-target-parameters'), 'lora_target_parameters', '+', 'str', None, None),
    (('--lora_modules_to_save', '--lora-modules-to-save'), 'lora_modules_to_save', '+', 'str', None, None),
    (('--lora_task_type', '--lora-task-type'), 'lora_task_type', None, 'str', None, None),
    (('--use_rslora', '--use-rslora'), 'use_rslora', '?', 'bool', None, True),
    (('--use_dora', '--use-dora'), 'use_dora', '?', 'bool', None, True),
    (('--load_in_8bit', '--load-in-8bit'), 'load_in_8bit', '?', 'bool', None, True),
    (('--load_in_4bit', '--load-in-4bit'), 'load_in_4bit', '?', 'bool', None, True),
    (('--bnb_4bit_quant_type', '--bnb-4bit-quant-type'), 'bnb_4bit_quant_type', None, 'str', ('fp4', 'nf4'), None),
    (('--use_bnb_nested_quant', '--use-bnb-nested-quant'), 'use_bnb_nested_quant', '?', 'bool', None, True),
    (('--bnb_4bit_quant_storage', '--bnb-4bit-quant-storage'), 'bnb_4bit_quant_storage', None, 'str', None, None),
)
