"""The workbench's screens, one module each: builder, dataset, setup, training, runs, dialogs."""
