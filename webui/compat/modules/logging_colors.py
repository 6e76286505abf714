"""upstream's ``modules.logging_colors``: ``logger``, the logger extensions write to."""

import logging

logger = logging.getLogger("text-generation-webui")
