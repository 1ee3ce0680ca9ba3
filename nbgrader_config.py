"""nbgrader configuration for the course: solutions/ is the source, notebooks/ the release."""

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = "mi-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
# Extra files submitted beside a notebook are never copied into the grading folder: a
# student's torch.py or sitecustomize.py must not be importable while their notebook is graded.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
    "*.py", "*.pth", "*.so", "*.pyd", "*.egg-link", ".*",
]
# Per-cell timeout (seconds): a hanging answer fails its cell instead of the whole run.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True
# Deleted test cells are restored from the gradebook and graded.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
