"""nbgrader configuration of the course (run nbgrader from the repository root).

Layout: instructor notebooks live in ``solutions/<assignment>/``; nbgrader writes
``release/``, ``submitted/``, ``autograded/``, ``feedback/`` and ``gradebook.db``
beside them (all ignored by git).

Grading a class: ``python -m coursepkg grade <assignment>`` (README, "Grading a
class"). Plain ``nbgrader autograde`` gets the same walls through the two steps
below: every submission runs in sandboxes, and its test cells are scored from the
isolated re-run of their checks (coursepkg.grading.nbgrader_plugin).
"""

from coursepkg.grading.nbgrader_plugin import autograde_preprocessors, feedback_preprocessors, sanitize_preprocessors

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "gan-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", ".DS_Store", ".coursepkg-grading"]

# Students may delete or reorder cells: put deleted test and answer cells back.
c.OverwriteCells.add_missing_cells = True

# A submission is put back in the shape of the released notebook first (an edited or re-flagged cell,
# strange metadata), then runs in sandboxes; the test cells get the verdicts of the isolated checks.
c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# Feedback shows the student's notebook and the verdicts, not the hidden tests' code.
c.GenerateFeedback.preprocessors = feedback_preprocessors()

# A whole lab runs in well under a minute when NBGRADER_EXECUTION is set; the limits leave room for
# slow laptops without letting an infinite loop hang grading (coursepkg.grading.sandbox.Limits).
c.SandboxedExecute.cell_timeout = 120
c.SandboxedExecute.deadline = 300

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
