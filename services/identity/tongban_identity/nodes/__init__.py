"""The directory of nodes, kept by the central node (100000): who is in the federation, where
their gateways are and which keys speak for them. Published signed; see ``service``."""
