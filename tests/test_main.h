/*
 * test_main.h - the one main() of every Check runner.
 */
#ifndef TEST_MAIN_H
#define TEST_MAIN_H

#include <check.h>
#include <stdlib.h>

/*
 * Every Check runner's main(): TU_CHECK_MAIN(make_suite) runs make_suite()'s
 * suite (Check's default fork mode, CK_NORMAL output) and exits
 * EXIT_SUCCESS only if every test passed. Process-wide set-up a runner
 * needs (signals, library init) goes in make_suite, which runs first.
 */
#define TU_CHECK_MAIN(make_suite)                             \
	int main(void)                                        \
	{                                                     \
		SRunner *sr_ = srunner_create(make_suite());  \
		int failed_;                                  \
		srunner_run_all(sr_, CK_NORMAL);              \
		failed_ = srunner_ntests_failed(sr_);         \
		srunner_free(sr_);                            \
		return failed_ ? EXIT_FAILURE : EXIT_SUCCESS; \
	}

#endif
