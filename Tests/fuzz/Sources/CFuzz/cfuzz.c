/* Empty: the module only declares libFuzzer's driver (include/cfuzz.h). */
#include "cfuzz.h"
