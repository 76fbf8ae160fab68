"""What the bot stores about a person, module by module: export it, or forget it (docs/privacy.md)."""

from guildkeep.privacy.registry import ForgetReport, PrivacyProvider, load_providers, provider_modules
from guildkeep.privacy.service import ExportInfo, ForgetResult, PrivacyService

__all__ = [
    "ExportInfo",
    "ForgetReport",
    "ForgetResult",
    "PrivacyProvider",
    "PrivacyService",
    "load_providers",
    "provider_modules",
]
