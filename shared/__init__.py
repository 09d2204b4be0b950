"""Code shared by the BraNet services: schemas, errors, image validation, storage, logging."""
