"""Teachers for distillation, one kind per module, all behind `base.Teacher`; `loader.load_teacher`
picks the kind by the `--teacher` value, and `cache.RenderCache` keeps their renders on disk."""
