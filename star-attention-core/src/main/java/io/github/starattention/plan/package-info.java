/** How a long context is cut into blocks, which positions each block is encoded at, and which host owns it. */
package io.github.starattention.plan;
