"""Brain-data experiments: ``neuroconv pretrain`` and ``neuroconv decode`` on sequence stores."""
