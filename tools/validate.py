"""Run the validation cases for every method and write docs/validation.md (see mqcd.analysis.validate)."""
import sys

from mqcd.analysis.validate import main

if __name__ == "__main__":
    sys.exit(main())
