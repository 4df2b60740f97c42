/* `unmix lincls CKPT --protocol wmse-cifar`: the W-MSE codebase's linear protocol on cached
 * backbone features (eval/lincls_features.h); reached from unmix_cmd_lincls. */
#pragma once

/* argv as unmix_cmd_lincls gets it. */
int unmix_cmd_lincls_wmse(int argc, char **argv);
/* True when argv selects --protocol wmse-cifar (either spelling). */
int unmix_lincls_wants_wmse(int argc, char **argv);
