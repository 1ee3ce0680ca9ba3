"""Trusted grading: ``mi-course grade`` and ``mi-course feedback``.

- :mod:`sandbox`   the isolated kernel command (namespaces, chroot, uid, limits)
- :mod:`kernel`    running cells in one sandboxed kernel from the grader
- :mod:`assemble`  which cells run (answers from the student, everything else trusted)
- :mod:`records`   trusted verdicts from the outputs the kernel recorded
- :mod:`grader`    grading a week in parallel
- :mod:`gradebook` writing grades to nbgrader's gradebook
- :mod:`report`    CSV files and a readable summary
- :mod:`feedback`  student feedback without hidden tests
"""
