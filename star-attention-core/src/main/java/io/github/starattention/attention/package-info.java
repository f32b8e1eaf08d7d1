/** Attention kernels returning partial attention (output plus log-sum-exp) and their exact merge. */
package io.github.starattention.attention;
