"""Every built-in layer family; importing this module registers them (registry.builtins)."""

from gradcheck_cli.layers import (  # noqa: F401
    activations,
    attention,
    conv,
    conv1d,
    dropout,
    embedding,
    groupnorm,
    linear,
    losses,
    norm,
    pooling,
    recurrent,
    residual,
    seq_losses,
    shape,
    temporal,
)
