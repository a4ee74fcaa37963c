"""Configuration: one YAML file describing the plant, its PLC sources and the settings."""

from pathlib import Path

from config.loader import (
    CheckedConfig,
    ConfigError,
    Problem,
    check_config,
    load_config,
    parse_config,
)
from config.model import ShopfloorConfig

DEMO_CONFIG = Path(__file__).with_name("demo.yaml")

__all__ = [
    "DEMO_CONFIG",
    "CheckedConfig",
    "ConfigError",
    "Problem",
    "ShopfloorConfig",
    "check_config",
    "load_config",
    "parse_config",
]
