"""The data sets: their registry and readers (CIFAR-10, its JPEG copy, Fashion-MNIST, MNIST), class subsets, batched
augmentation and the on-device loader."""
