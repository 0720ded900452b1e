from . import backbones, decode_heads, layers, necks, plugins  # noqa: F401
