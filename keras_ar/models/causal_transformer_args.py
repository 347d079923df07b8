"""The argument checks of `CausalTransformer.__init__` (ValueError naming the argument)."""

from keras_ar.layers.transformer_block import ACTIVATIONS

POSITIONS = ("learned", "sinusoidal")


def check_args(vocab_size, num_layers, num_heads, hidden_dim, max_length,
               num_global_classes, global_condition_dim, position, memory_dim,
               memory_length, activation):
    for name, value in (("vocab_size", vocab_size), ("num_layers", num_layers),
                        ("num_heads", num_heads), ("hidden_dim", hidden_dim),
                        ("max_length", max_length)):
        if int(value) < 1:
            raise ValueError(f"`{name}` must be >= 1; received {value}.")
    if int(hidden_dim) % int(num_heads):
        raise ValueError(f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` "
                         f"({num_heads}).")
    if num_global_classes and global_condition_dim:
        raise ValueError("Use either `num_global_classes` (ids) or `global_condition_dim` "
                         "(vectors), not both.")
    if position not in POSITIONS:
        raise ValueError(f"`position` must be one of {POSITIONS}; received {position!r}.")
    if bool(memory_dim) != bool(memory_length):
        raise ValueError(
            "Cross-attention needs both `memory_dim` and `memory_length` (the memory's fixed "
            f"size); received memory_dim={memory_dim}, memory_length={memory_length}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {ACTIVATIONS}; received "
                         f"{activation!r}.")
