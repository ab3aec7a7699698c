"""The suite runs in English whatever the machine's locale: i18n's fallback language (KARP_LANG
first, then LANGUAGE / LC_ALL / LC_MESSAGES / LANG) is set before karp_models is imported. The
Chinese tests ask for Chinese explicitly (i18n.using, ?lang=zh)."""
import os

os.environ["KARP_LANG"] = "en"
