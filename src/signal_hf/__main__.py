"""``python -m signal_hf RECIPE`` / ``accelerate launch -m signal_hf RECIPE``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
