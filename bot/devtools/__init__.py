"""Development tooling, not the product: the Bot API emulator, the in-process harness built
on it, the terminal demo (``python -m bot demo``) and the HTML parser the emulator checks
every message with. Nothing in ``bot/`` outside this package, ``handlers/`` or ``storage/``
imports it."""
