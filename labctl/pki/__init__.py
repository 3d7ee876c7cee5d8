"""PKI core: certificate specs (pure), minting backends, on-disk store, check/rotate."""
