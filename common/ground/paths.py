"""Where the project lives: run folders, configs and data are found from here."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
