"""Console settings (environment variables, prefix ``ESPSTREAM_``)."""

import ipaddress

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from espstream.plumbing.config import CommonSettings


class ConsoleSettings(CommonSettings):
    # A refused setting's error must not print its value: the password is one.
    model_config = SettingsConfigDict(**CommonSettings.model_config, hide_input_in_errors=True)

    console_host: str = "127.0.0.1"
    console_port: int = Field(8090, ge=0, le=65535)
    # Basic auth for every page; required when console_host is not a loopback address.
    console_user: str = "operator"
    console_password: SecretStr | None = None
    # The recent-events page reads this many of each partition's newest records (?n= changes it, up to the max).
    console_recent_per_partition: int = Field(50, ge=1)
    console_recent_max_per_partition: int = Field(2000, ge=1)
    # How often the lookup index reads what was written to the normalized topic since its last read.
    console_index_interval_seconds: float = Field(1.0, gt=0)

    @property
    def password(self) -> str | None:
        """The password, None when unset or empty (an empty one would be no protection)."""
        value = self.console_password.get_secret_value() if self.console_password is not None else ""
        return value or None

    def refusal(self) -> str | None:
        """Why the console must not start with these settings, or None."""
        if self.password is None and not is_loopback(self.console_host):
            return (
                f"ESPSTREAM_CONSOLE_HOST={self.console_host} is reachable from other hosts: set ESPSTREAM_CONSOLE_PASSWORD"
                " (and ESPSTREAM_CONSOLE_USER, default operator), or listen on 127.0.0.1"
            )
        return None

    @property
    def url(self) -> str:
        host = f"[{self.console_host}]" if ":" in self.console_host else self.console_host
        return f"http://{host}:{self.console_port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve to anything
        return False
