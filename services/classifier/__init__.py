"""The classifier service: ResNet18, one model per modality, benign vs malignant."""
