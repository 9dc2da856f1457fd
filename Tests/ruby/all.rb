# frozen_string_literal: true

# Runs every Ruby test file in one process (CTest's ruby_binding): ruby Tests/ruby/all.rb
Dir[File.join(__dir__, "test_*.rb")].sort.each { |f| require f }
