"""Pipeline components: each a spec (interface) and an executor (work), TFX style."""
