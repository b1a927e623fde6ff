"""National data: national events forwarded from a regional node to the central node."""
