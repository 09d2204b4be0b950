"""Training and evaluation of the ResNet18 classifiers."""
