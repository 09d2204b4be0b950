"""The contract the BraNet services share: schemas, errors, image validation, the app factory
and logging. No torch here: the gateway installs it without."""
