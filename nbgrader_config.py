"""nbgrader configuration of the course (run nbgrader from the repository root).

Layout: instructor notebooks live in ``solutions/<assignment>/``; nbgrader writes
``release/``, ``submitted/``, ``autograded/``, ``feedback/`` and ``gradebook.db``
beside them (all ignored by git).
"""

from coursepkg.grading.nbgrader_plugin import autograde_preprocessors

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "gan-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".DS_Store"]

# Students may delete or reorder cells: put deleted test and answer cells back.
c.OverwriteCells.add_missing_cells = True

# A whole lab runs in well under a minute when NBGRADER_EXECUTION is set; the
# limits leave room for slow laptops without letting an infinite loop hang grading.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
c.IsolatedChecks.timeout = 180

# Re-run every test cell's checks out of the student's kernel (see
# coursepkg.grading.isolation) right after the notebook has executed.
c.Autograde.autograde_preprocessors = autograde_preprocessors()

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
