//! A mixed-scale dense convolutional network (MSDnet, Pelt & Sethian, PNAS 2018) for CT
//! segmentation, with hand-written dilated-convolution kernels.
#![deny(missing_docs)]
