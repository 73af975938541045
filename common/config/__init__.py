"""Dataset config model: IceProd 3.1/3.2 schemas, default filling, validation.

``fill_defaults`` then ``validate`` behave like IceProd's (same defaults,
same ``Validation error in config[...]: msg`` text); ``check_config``
reports every problem at once, adding frazil's extra checks. Macro
expansion lives in ``common.macros``; this package only checks structure.
"""
from .checks import check_config, prepare_config
from .convert import upgrade_config
from .defaults import fill_defaults
from .errors import ConfigError, ConfigProblem, ConfigWarning
from .schema import load_schema, schema_version
from .validation import validate

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "ConfigWarning",
    "check_config",
    "fill_defaults",
    "load_schema",
    "prepare_config",
    "schema_version",
    "upgrade_config",
    "validate",
]
