"""Green Button (ESPI) data: the streaming parser and the file-import konnector."""
