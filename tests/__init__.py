"""tracker's tests: one package, so ``tests.conftest`` is the conftest pytest loaded."""
