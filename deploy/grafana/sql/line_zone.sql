-- The line's time zone: its calendar's, UTC without one (as the API buckets).
coalesce((SELECT c.timezone FROM lines l JOIN calendars c ON c.name = l.calendar
          WHERE l.id = ${line:sqlstring}), 'UTC')
