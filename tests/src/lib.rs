//! Helpers for fossa's end-to-end tests (see `tests/tests/`).
