"""The admin panel's services (SPEC D1, D2).

- ``registry``: the shape of a declaration (Table, Column, Field, Action and its inputs);
- ``fields``: how a cell shows a value and how a typed value is read back (converters);
- ``accounts``: what an admin does to accounts, behind the one lock-out rule (CLI-reusable);
- ``actions``: the group actions a table can offer;
- ``tables``: the eleven table declarations, ``TABLES``;
- ``listing``: a page of rows (search, sort, paging), one row, the count of every table;
- ``crud``: edit, add, delete and run an action, for any declared table.
"""
