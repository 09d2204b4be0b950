"""BraNet's training workbench, apart from the services: one folder per model kind.

Each kind's folder is laid out like torchvision's classification references: `data` (what the
images are and how they are augmented), `engine` (one epoch of training, predictions),
`folds` (cross-validation and leave-one-site-out plans and their runner), `report` (metrics
and the written report), and the commands (`train`, `evaluate`, ...). What serving and training
must agree on is imported from the service (`branet_classifier.model`), never copied.
"""
