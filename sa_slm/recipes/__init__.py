"""Training recipes: each reads load → build → train → save, from a typed YAML config.

    python -m sa_slm.recipes.stage0 --config configs/stage0_tiny.yaml [key=value ...]
    python -m sa_slm.recipes.stage1 --config configs/stage1_tiny.yaml    (stage 2: configs/stage2_*.yaml)
    python -m sa_slm.recipes.stage3 --config configs/stage3_tiny.yaml

`make stageN CONFIG=...` runs the thin entry scripts in `stages/`, which call these modules.
"""
