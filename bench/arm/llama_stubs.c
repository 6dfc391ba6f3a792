/* Symbols quants.o refers to from functions not measured here. */
float ggml_table_f32_ue4m3[256];
void quantize_row_q8_K_ref(const float *x, void *y, long k) { (void)x; (void)y; (void)k; }
