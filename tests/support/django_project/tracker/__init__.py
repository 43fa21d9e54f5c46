"""An app with anymail tracking receivers, connected in AppConfig.ready() as Django projects do."""
